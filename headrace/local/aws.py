"""boto3 clients for the local plane's endpoint, with the account and region moto serves."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

# moto's default account; any 12 digits would do, but matching moto keeps its generated ARNs consistent.
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def local_environment(endpoint: str, region: str = LOCAL_REGION) -> dict[str, str]:
    """What a process (a handler, the AWS CLI, a user's script) needs to talk to the local plane."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **LOCAL_CREDENTIALS,
    }


@dataclass
class Clients:
    endpoint: str
    region: str = LOCAL_REGION
    account: str = LOCAL_ACCOUNT

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def cloudformation(self) -> Any:
        return self.client("cloudformation")

    @cached_property
    def lambda_(self) -> Any:
        return self.client("lambda")
