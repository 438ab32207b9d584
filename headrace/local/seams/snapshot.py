"""Keep the local plane's AWS state across `down`/`up`: moto's backends pickled into the state directory.

moto's module-level backend dictionaries are referenced from many modules, so a restore refills them in
place rather than replacing them. moto's objects hold a few things plain pickle refuses: locks (recreated
empty), RSA keys (kept as PEM), weak-value caches and locally defined default factories (cloudpickle
serializes those by value).
"""

from __future__ import annotations

import io
import logging
import pickle
import threading
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any

import cloudpickle
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.backends import get_backend
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

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


def _backends(service: str) -> Any:
    # The state machines the plane runs live in the ASL parser's backend (see seams.py).
    if service == "stepfunctions":
        return stepfunctions_parser_backends
    return get_backend(service)  # type: ignore[call-overload]


_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


def _private_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None)


def _new_defaultdict(cls: type[defaultdict[Any, Any]], factory: Any) -> defaultdict[Any, Any]:
    # Subclasses like moto's ParameterDict take extra __init__ arguments; their state follows separately.
    instance = cls.__new__(cls)
    defaultdict.__init__(instance, factory)
    return instance


class _StatePickler(cloudpickle.Pickler):  # type: ignore[misc]
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in _LOCK_TYPES:
            return _LOCK_TYPES[type(obj)], ()
        if isinstance(obj, rsa.RSAPrivateKey):
            pem = obj.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return _private_key, (pem,)
        if isinstance(obj, defaultdict) and type(obj) is not defaultdict:
            return (
                _new_defaultdict,
                (type(obj), obj.default_factory),
                obj.__dict__ or None,
                None,
                iter(obj.items()),
            )
        if isinstance(obj, weakref.WeakValueDictionary):
            return weakref.WeakValueDictionary, (dict(obj),)
        return super().reducer_override(obj)


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def save(state_dir: Path) -> list[str]:
    """Write the snapshot; returns the services that could not be saved (their state is lost on restart)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    saved: dict[str, bytes] = {}
    skipped: list[str] = []
    for service in SERVICES:
        try:
            saved[service] = _dumps(dict(_backends(service)))
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
    saved: dict[str, bytes] = pickle.loads(snapshot.read_bytes())
    for service, data in saved.items():
        backends = _backends(service)
        backends.clear()
        backends.update(pickle.loads(data))
    return True
