"""`make bench`'s last step: runs the Python reference (per event) and the cold-start harness in
this same run, reads what criterion and the mitigation benchmark measured just before, and
prints one table with the targets (also written to target/bench/report.md).

  python bench/report.py
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
BINARY = ROOT / "target" / "release" / "guard-function"
DECIDE_LOOP = ROOT / "target" / "release" / "decide-loop"
# Rounds of the same-seconds comparison: a round of the Rust decision, then one of the
# Python reference, each a few hundred milliseconds.
ROUNDS = 9


def criterion_median_ns(group, name):
    path = ROOT / "target" / "criterion" / group / name / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def run_json(*command):
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def zip_size(binary):
    # As Lambda takes it (cargo lambda build --output-format zip): one file named bootstrap.
    OUT.mkdir(parents=True, exist_ok=True)
    archive = OUT / "bootstrap.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    return archive.stat().st_size


def same_seconds_rounds(python):
    """ROUNDS rounds, each a round of the Rust decision, then one of the Python reference, then
    one of json.loads alone: all three within the same few seconds, so that a slow moment of
    the machine slows each of them."""
    return [
        {
            "rust": run_json(str(DECIDE_LOOP)),
            "python": run_json(python, "bench/reference.py", "--round"),
            "loads": run_json(python, "bench/reference.py", "--round", "--loads"),
        }
        for _ in range(ROUNDS)
    ]


def ratios(rounds, numerator, denominator):
    """Per transport, `numerator` over `denominator` in each round, sorted."""
    return {
        t: sorted(r[numerator][t] / r[denominator][t] for r in rounds)
        for t in rounds[0][denominator]
    }


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    python = sys.executable
    reference = run_json(python, "bench/reference.py")
    rounds = same_seconds_rounds(python)
    paired = ratios(rounds, "python", "rust")
    cold = run_json(python, "bench/coldstart.py", str(BINARY), python)
    mitigation = json.loads((OUT / "mitigation.json").read_text())
    rows = []

    def row(what, rust, python_value, *targets):
        """`targets`: (text, met) pairs, each judged on its own."""
        verdicts = "; ".join(f"{t}: {'met' if ok else 'MISSED'}" for t, ok in targets)
        rows.append(f"| {what} | {rust} | {python_value} | {verdicts} |")

    for transport, py_ns in reference.items():
        rust_ns = criterion_median_ns("decision", transport)
        ratio = py_ns / rust_ns
        each = paired[transport]
        same = median(each)
        row(
            f"decision, {transport} (median per event)",
            f"{rust_ns / 1000:.2f} µs",
            f"{py_ns / 1000:.1f} µs ({ratio:.1f}×; same seconds {same:.1f}×, "
            f"{each[0]:.1f}–{each[-1]:.1f}× over {len(each)} rounds)",
            ("≤ 10 µs", rust_ns <= 10_000),
            ("≥ 10× (same seconds)", same >= 10),
        )
    r, p = cold["rust"], cold["python"]
    ratio = p["ready_ms"] / r["ready_ms"]
    row(
        "cold start: start → ready for the first event (median)",
        f"{r['ready_ms']:.1f} ms",
        f"{p['ready_ms']:.0f} ms ({ratio:.0f}×)",
        ("≤ 25 ms", r["ready_ms"] <= 25),
        ("≥ 10×", ratio >= 10),
    )
    row(
        "cold start: start → first event answered (median)",
        f"{r['first_event_ms']:.1f} ms",
        f"{p['first_event_ms']:.0f} ms",
    )
    row(
        "peak RSS after the first event",
        f"{r['peak_rss_mb']:.1f} MB",
        f"{p['peak_rss_mb']:.1f} MB",
        ("≤ 20 MB", r["peak_rss_mb"] <= 20),
    )
    size = BINARY.stat().st_size
    row("release binary (x86_64)", f"{size / 1e6:.1f} MB", "")
    row("deployment zip (bootstrap, deflate)", f"{zip_size(BINARY) / 1e6:.1f} MB", "")
    # Run by run (each guard run beside the calls-alone run after it): steadier than the
    # difference of two medians on an emulator whose calls vary by milliseconds.
    added = mitigation["added_paired_median_ms"]
    row(
        f"mitigation on the emulator, p50 / p99 over {mitigation['runs']} runs",
        f"{mitigation['guard_p50_ms']:.2f} / {mitigation['guard_p99_ms']:.2f} ms",
        f"calls alone {mitigation['calls_alone_p50_ms']:.2f} / {mitigation['calls_alone_p99_ms']:.2f} ms",
        (f"guard adds ≤ 2 ms (median {added:.2f} ms)", added <= 2),
    )
    storm = criterion_median_ns("storm", "1000-deliveries-50-alarms")
    row(
        "alarm storm: 1,000 deliveries, 50 alarms, one warm guard (fakes)",
        f"{storm / 1e6:.1f} ms",
        "",
        ("one action per target (asserted each iteration)", True),
    )

    table = "\n".join(
        ["| measurement | Rust | Python reference | targets |", "|---|---|---|---|"] + rows
    )
    # For reading the per-event ratio: how much of the reference is CPython's C JSON parser,
    # and the Rust decision against that parser alone, in the same rounds.
    loads_over_rust = ratios(rounds, "loads", "rust")
    loads_share = ratios(rounds, "loads", "python")
    table += "\n\n" + "\n".join(
        [
            "| event (same seconds, medians of the rounds) | Rust decision | Python json.loads alone "
            "| json.loads's share of the reference |",
            "|---|---|---|---|",
        ]
        + [
            f"| {t} | {median(r['rust'][t] for r in rounds) / 1000:.2f} µs "
            f"| {median(r['loads'][t] for r in rounds) / 1000:.1f} µs "
            f"({median(loads_over_rust[t]):.1f}× the Rust decision) "
            f"| {median(loads_share[t]):.0%} |"
            for t in reference
        ]
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
