"""Keep the local plane's AWS state across `down`/`up`: moto's backends pickled into the state directory.

moto's module-level backend dictionaries are referenced from many modules, so a restore refills them in
place rather than replacing them.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

from moto.backends import get_backend

log = logging.getLogger("headrace.local")

SNAPSHOT_FILE = "moto-state.pickle"
# Every service the synthesized stacks and the pipeline touch.
SERVICES = (
    "s3",
    "dynamodb",
    "stepfunctions",
    "lambda",
    "events",
    "iam",
    "kms",
    "sqs",
    "ssm",
    "logs",
    "cloudwatch",
    "cloudformation",
    "sagemaker",
    "sts",
)


def save(state_dir: Path) -> list[str]:
    """Write the snapshot; returns the services that could not be saved (their state is lost on restart)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    saved: dict[str, bytes] = {}
    skipped: list[str] = []
    for service in SERVICES:
        try:
            saved[service] = pickle.dumps(dict(get_backend(service)))  # type: ignore[call-overload]
        except Exception as exc:
            log.warning("cannot save %s state: %s", service, exc)
            skipped.append(service)
    temporary = state_dir / (SNAPSHOT_FILE + ".tmp")
    temporary.write_bytes(pickle.dumps(saved))
    temporary.replace(state_dir / SNAPSHOT_FILE)
    return skipped


def restore(state_dir: Path) -> bool:
    """Load a snapshot written by `save`; False when the directory has none (a fresh plane)."""
    snapshot = state_dir / SNAPSHOT_FILE
    if not snapshot.exists():
        return False
    # The snapshot is this tool's own file in a directory the user chose; it is trusted like the code.
    saved: dict[str, bytes] = pickle.loads(snapshot.read_bytes())  # noqa: S301
    for service, data in saved.items():
        backends = get_backend(service)  # type: ignore[call-overload]
        backends.clear()
        backends.update(pickle.loads(data))  # noqa: S301
    return True
