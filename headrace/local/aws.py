"""boto3 clients for the local plane's endpoint: the account and region moto serves, and the plane's key."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from pydantic import BaseModel, ConfigDict

# moto's default account; any 12 digits would do, but matching moto keeps its generated ARNs consistent.
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
CREDENTIALS_FILE = "credentials.json"


class PlaneCredentials(BaseModel):
    """The plane's own access key: the only long-term key it accepts (seams/authn.py), and admin."""

    model_config = ConfigDict(frozen=True)

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> PlaneCredentials:
        # Shaped like an IAM user's key (AKIA + 16, a 40-character secret): tools that check shapes accept it.
        return cls(
            access_key_id="AKIA" + secrets.token_hex(8).upper(),
            secret_access_key=secrets.token_urlsafe(30),
        )

    def environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


def write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only (0600), atomically: never a moment world-readable."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # O_CREAT's mode does not apply to a file that already existed
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)


def plane_credentials(work_dir: Path, account: str | None = None) -> PlaneCredentials:
    """The plane's key for `work_dir`: generated at its first start (0600), the same on every start after.

    A plane whose stages live in several accounts (stages.yaml `account:`) issues one such admin key per
    account: `account` names one other than its first stage's, kept in a file of its own."""
    path = work_dir / (CREDENTIALS_FILE if account is None else f"credentials-{account}.json")
    try:
        return PlaneCredentials.model_validate_json(path.read_text())
    except FileNotFoundError:
        pass
    credentials = PlaneCredentials.generate()
    work_dir.mkdir(parents=True, exist_ok=True)
    write_private(path, credentials.model_dump_json())
    return credentials


def local_environment(
    endpoint: str, credentials: PlaneCredentials, region: str = LOCAL_REGION
) -> dict[str, str]:
    """What a process (a handler, the AWS CLI, a user's script) needs to talk to the local plane."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **credentials.environment(),
    }


@dataclass
class Clients:
    endpoint: str
    region: str = LOCAL_REGION
    account: str = LOCAL_ACCOUNT
    # None: boto3's own chain (AWS_ACCESS_KEY_ID..., as `headrace local env` exports them).
    credentials: PlaneCredentials | None = None

    def client(self, service: str) -> Any:
        keys = (
            {
                "aws_access_key_id": self.credentials.access_key_id,
                "aws_secret_access_key": self.credentials.secret_access_key,
            }
            if self.credentials
            else {}
        )
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            **keys,
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
