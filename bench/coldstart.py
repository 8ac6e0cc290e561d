"""Cold start for `make bench`: each function process is started under a small fake of the
Lambda Runtime API on loopback and timed from its start to its first `GET .../next` (ready for
the first event, with every SDK client built); then it is handed one event, and after its
answer its peak RSS is read (VmHWM) and it is stopped. The Rust guard (release build) and the Python
reference (bench/python_guard.py: boto3 and its clients) go through the same harness.

  python bench/coldstart.py RUST_BINARY PYTHON  -> JSON on stdout
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENT = (ROOT / "events" / "eventbridge-ok.json").read_bytes()  # decided without AWS calls
RUNS = int(os.environ.get("COLDSTART_RUNS", "20"))
LOG = open(os.environ.get("COLDSTART_LOG", os.devnull), "ab")


class Runtime(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        s = self.server
        if s.ready is None:
            s.ready = time.perf_counter()
        if s.served:
            s.stop.wait()  # the second /next: the process is idle; it is stopped here
            return
        s.served = True
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:guard",
        )
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(EVENT)))
        self.end_headers()
        self.wfile.write(EVENT)

    def do_POST(self):
        s = self.server
        length = int(self.headers.get("Content-Length", 0))
        s.answer = (self.path.rsplit("/", 1)[-1], self.rfile.read(length))
        s.answered = time.perf_counter()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        s.done.set()


def run_once(command, env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    server.ready = server.answered = server.answer = None
    server.served = False
    server.done = threading.Event()
    server.stop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=LOG)
    if not server.done.wait(60):
        process.kill()
        raise SystemExit(f"{command[0]}: no answer in 60 s")
    time.sleep(0.05)  # let it return to the loop
    # Peak RSS of the process since its exec (VmHWM). Not wait4's ru_maxrss: that one also
    # counts the forked copy of this Python harness before the exec.
    status = Path(f"/proc/{process.pid}/status").read_text()
    peak_kb = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1])
    process.kill()
    process.wait()
    server.stop.set()
    server.shutdown()
    server.server_close()
    kind, body = server.answer
    assert kind == "response", (command, kind, body)
    return {
        "ready_ms": (server.ready - start) * 1000,
        "first_event_ms": (server.answered - start) * 1000,
        "peak_rss_mb": peak_kb / 1024,
    }


def measure(command, env):
    runs = [run_once(command, env) for _ in range(RUNS)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main():
    rust, python = sys.argv[1], sys.argv[2]
    env = {
        "PATH": os.environ["PATH"],
        "GUARD_POLICY_FILE": str(ROOT / "events" / "policy.toml"),
        "MODEL_ID": "anthropic.claude-3-haiku-20240307-v1:0",  # so the Bedrock client is built
        # As the template deploys it: the claim table's client built too, five instances.
        "GUARD_STATE_TABLE": "rollback-guard-state",
        "GUARD_INSTANCES": "5",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "guard",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/guard",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
    }
    result = {
        "rust": measure([rust], env),
        "python": measure([python, str(ROOT / "bench" / "python_guard.py")], env),
    }
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
