"""What a running plane records in `<work dir>/plane.json` for the CLI and other processes, and how they read
it: where it listens, the stages and accounts it serves, and the keys it issued."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, model_validator

from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION, Clients, PlaneCredentials, local_environment
from headrace.naming import DEFAULT_STAGE

RUNTIME_FILE = "plane.json"
DEFAULT_WORK_DIR = Path(".headrace")


class PlaneInfo(BaseModel):
    """What a running plane publishes in `<work dir>/plane.json` for the CLI and other processes."""

    pid: int
    port: int
    endpoint: str
    region: str = LOCAL_REGION
    account: str = LOCAL_ACCOUNT
    stage: str = DEFAULT_STAGE
    # Every stage it provisioned (`local up --stages dev,prod`), `stage` first; their stack names carry it.
    stages: list[str] = []
    state_dir: str | None = None
    outputs: dict[str, dict[str, str]] = {}
    started_at: float = 0.0
    # The control channel on 127.0.0.1 (control_server.py): `headrace local tick` posts there.
    control_port: int | None = None
    # The plane's key (aws.py) for `account`: every request must be signed with a key the plane issued, and
    # the control port wants this one's secret.
    credentials: PlaneCredentials
    # The model configs it was provisioned from: the CLI reads these, not whatever models/ is near its cwd.
    models_dir: str | None = None
    # Each stage's account, where stages.yaml puts them in several (`account:`); a stage not listed is in
    # `account`. Each other account's admin key, by account.
    accounts: dict[str, str] = {}
    account_credentials: dict[str, PlaneCredentials] = {}

    @model_validator(mode="after")
    def _first_stage_listed(self) -> PlaneInfo:
        # A plane.json from before `--stages` names only its one stage.
        if not self.stages:
            self.stages = [self.stage]
        return self

    def account_of(self, stage: str | None = None) -> str:
        return self.accounts.get(stage or self.stage, self.account)

    def credentials_for(self, stage: str | None = None) -> PlaneCredentials:
        """The admin key of the stage's account (default: the plane's first stage's)."""
        account = self.account_of(stage)
        return self.credentials if account == self.account else self.account_credentials[account]

    def environment(self, stage: str | None = None) -> dict[str, str]:
        return local_environment(self.endpoint, self.credentials_for(stage), self.region)

    def clients(self, stage: str | None = None) -> Clients:
        return Clients(self.endpoint, self.region, self.account_of(stage), self.credentials_for(stage))


def read_info(work_dir: Path = DEFAULT_WORK_DIR) -> PlaneInfo | None:
    path = work_dir / RUNTIME_FILE
    if not path.exists():
        return None
    info = PlaneInfo.model_validate_json(path.read_text())
    return info if process_alive(info.pid) else None  # else: a plane that died without cleaning up


def process_alive(pid: int) -> bool:
    try:
        # Reap it if it is our own child that exited: a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
