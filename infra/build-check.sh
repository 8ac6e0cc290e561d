#!/usr/bin/env bash
# make infra-build (run by .ci/run on every submission), a packaging check: `sam build` of the
# template for x86_64, offline, the way
# `make deploy` builds for arm64 (SAM's rust-cargolambda builder runs `cargo lambda build
# --release`; cargo-lambda's zig comes from the pinned ziglang wheel in .venv). arm64 needs
# the aarch64-unknown-linux-gnu rustup target, which this machine cannot fetch.
# Checks that each function's artifact is an executable x86-64 ELF named `bootstrap`, and
# prints the size of the zip Lambda would be given. The sample workload (ai-insight) is
# built too (SampleWorkload=true): both functions are checked, and the fast lane's layer
# (make layer builds its content; sam build leaves a layer without a BuildMethod where it is
# and points the built template at it): extensions/rollback-guard-telemetry.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=target/sam-build
rm -rf "$out"
make --no-print-directory layer ARCH=x86_64
(
  cd infra
  # .venv first: its python3 holds ziglang, which cargo-lambda runs as `python3 -m ziglang`.
  PATH="$root/.venv/bin:$root/.venv-sam/bin:$PATH" SAM_CLI_TELEMETRY=0 \
    AWS_DEFAULT_REGION=us-east-1 "$root/.venv-sam/bin/sam" build --config-file samconfig.toml \
    --parameter-overrides Architecture=x86_64 SampleWorkload=true --build-dir "$root/$out" >"$root/$out.log" 2>&1 ||
    { cat "$root/$out.log"; exit 1; }
)
.venv/bin/python - "$out" <<'PY'
import io, os, re, stat, sys, zipfile

out = sys.argv[1]
failed = False
built = open(os.path.join(out, "template.yaml")).read()
layer = re.search(r"\n  TelemetryLayer:\n(?:    .*\n|\n)*?      ContentUri: (\S+)", built)
layer_dir = os.path.normpath(os.path.join(out, layer.group(1))) if layer else "(no ContentUri)"
artifacts = [
    ("GuardFunction", os.path.join(out, "GuardFunction"), "bootstrap"),
    ("InsightFunction", os.path.join(out, "InsightFunction"), "bootstrap"),
    ("TelemetryLayer", layer_dir, "extensions/rollback-guard-telemetry"),
]
for function, directory, name in artifacts:
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            header = f.read(20)
        mode = os.stat(path).st_mode
    except OSError as e:
        print(f"{function}: no {name} ({e})")
        failed = True
        continue
    elf = header[:4] == b"\x7fELF"
    x86_64 = int.from_bytes(header[18:20], "little") == 0x3E  # e_machine EM_X86_64
    executable = bool(mode & stat.S_IXUSR)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name)
        info.external_attr = (mode & 0o777) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
    size = os.path.getsize(path)
    print(
        f"{function}: {name} {size / 1e6:.1f} MB, zip {buf.tell() / 1e6:.1f} MB, "
        f"{'ELF' if elf else 'NOT ELF'}, {'x86-64' if x86_64 else 'NOT x86-64'}, "
        f"{'executable' if executable else 'NOT EXECUTABLE'}"
    )
    failed |= not (elf and x86_64 and executable)
sys.exit(1 if failed else 0)
PY
