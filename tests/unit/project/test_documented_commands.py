"""Every documented command for the local stack names the emulator itself, so none can reach AWS: the AWS
CLI v1 ignores AWS_ENDPOINT_URL, and a command copied without it would go to the account in ~/.aws. And each
uses only what `make install` installs."""

import re

import pytest

from local.aws.template import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LOCAL = re.compile(r"127\.0\.0\.1|instagram-gateway-local|LOCAL_AWS")
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined."""
    return [c for c in re.sub(r"\\\n\s*", " ", block).splitlines() if c.strip() and not c.lstrip().startswith("#")]


def local_blocks() -> list[tuple[str, str]]:
    return [
        (f"{path.name}:{block[:60]!r}", block)
        for path in DOCUMENTS
        for block in FENCE.findall(path.read_text())
        if LOCAL.search(block)
    ]


@pytest.mark.parametrize(("where", "block"), local_blocks(), ids=lambda v: v if ":" in v else "")
def test_a_local_example_names_the_local_endpoint_in_every_aws_call(where: str, block: str) -> None:
    for command in commands(block):
        if re.search(r"(^|[\s$(|;/])aws\s+(?!--endpoint-url)[a-z]", command):
            pytest.fail(f"{where}: an aws command without --endpoint-url first: {command.strip()}")
        # make install puts the AWS CLI in .venv (requirements-dev.txt); an `aws` on PATH may be none, or another.
        if re.search(r"(^|[\s$(|;])aws\s", command):
            pytest.fail(f"{where}: the AWS CLI is .venv/bin/aws: {command.strip()}")
        # What make install does not install, a newcomer may not have.
        if re.search(r"(^|[\s$(|;])jq\s", command):
            pytest.fail(f"{where}: jq is not installed by make install: {command.strip()}")
        if "boto3.client(" in command and "endpoint_url=" not in command:
            pytest.fail(f"{where}: a boto3 client without endpoint_url: {command.strip()}")
        assert "AWS_ENDPOINT_URL=" not in command, f"{where}: relies on AWS_ENDPOINT_URL: {command.strip()}"


def test_the_examples_are_found() -> None:
    blocks = [where for where, _ in local_blocks()]
    assert any(w.startswith("README.md") for w in blocks) and any(w.startswith("local-stack.md") for w in blocks)
