"""The cold-start side of the Python reference: a boto3 Lambda in the seed runbooks' style.
It imports boto3, builds the clients the guard uses (Lambda, CloudWatch, SNS, EventBridge,
Bedrock Runtime) at module level, then runs the Lambda Runtime API loop with the reference
decision (bench/reference.py). bench/coldstart.py times it against the Rust guard."""

import json
import os
import sys
import urllib.request

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import UNREADABLE, decide, load_policy  # noqa: E402

CLIENTS = {
    name: boto3.client(name)
    for name in ["lambda", "cloudwatch", "sns", "events", "bedrock-runtime"]
}
POLICY = load_policy(os.environ["GUARD_POLICY_FILE"])
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"


def main():
    while True:
        with urllib.request.urlopen(API + "/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            raw = r.read()
        try:
            body, path = json.dumps(decide(POLICY, raw)).encode(), "/response"
        except UNREADABLE as e:
            body, path = json.dumps({"errorMessage": str(e)}).encode(), "/error"
        urllib.request.urlopen(urllib.request.Request(API + f"/{request_id}{path}", data=body))


if __name__ == "__main__":
    main()
