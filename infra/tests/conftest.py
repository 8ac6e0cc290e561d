"""The template's tests' fixtures: the template as CloudFormation reads it, and the emulator's
clients (scripts/with-emulator.sh sets the endpoint and credentials)."""

import json
import os

import boto3
import pytest
from cfnlint.decode import decode
from template_support import TEMPLATE


@pytest.fixture(scope="module")
def template():
    tpl, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return json.loads(json.dumps(tpl, default=str))


@pytest.fixture(scope="module")
def aws():
    assert os.environ.get("AWS_ENDPOINT_URL"), "run through scripts/with-emulator.sh"
    return {
        name: boto3.client(name, region_name="us-east-1")
        for name in ["events", "sqs", "cloudformation", "kms", "sns", "iam", "logs"]
    }
