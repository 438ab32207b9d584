"""Role sessions: the temporary credentials a resource runs with, as if STS AssumeRole had issued them.

Lambda functions get them in their environment, state machines and SageMaker jobs in their clients; a call
signed with one of these access keys is authorized as the role. Any other key is the plane's own (admin).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from headrace.local.iam.policy import Principal


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


class RoleSessions:
    def __init__(self, account: str) -> None:
        self.account = account
        self._by_key: dict[str, Principal] = {}
        self._issued: dict[str, Credentials] = {}
        # Per plane: without it, anyone who knows a role's ARN could derive its sessions' secrets.
        self._salt = secrets.token_hex(16)
        self._lock = threading.Lock()

    def credentials(self, role_arn: str, session: str = "headrace-local") -> Credentials:
        """Stable per role and session name, so clients cached across invocations stay valid."""
        digest = hashlib.sha256(f"{self._salt}|{role_arn}|{session}".encode()).hexdigest().upper()
        key = f"ASIA{digest[:16]}"  # temporary credentials' access keys start with ASIA
        credentials = Credentials(key, digest[16:56], f"headrace-local-session-{digest[24:48]}")
        with self._lock:
            self._by_key[key] = Principal(arn=role_arn, account=self.account, session=session[:64])
            self._issued[key] = credentials
        return credentials

    def issued(self, access_key_id: str) -> Credentials | None:
        """The credentials issued under an access key, for verifying its signatures (seams/authn.py)."""
        return self._issued.get(access_key_id)

    def principal(self, access_key_id: str) -> Principal | None:
        """The role session behind an access key; None for the plane's own credentials."""
        return self._by_key.get(access_key_id)
