"""moto's backends as pickles, one per service, for the state directory (headrace/local/state_store.py).

moto's module-level backend dictionaries are referenced from many modules, so a restore refills them in
place rather than replacing them. moto's objects hold a few things plain pickle refuses: locks (recreated
empty), RSA keys (kept as PEM), weak-value caches and locally defined default factories (cloudpickle
serializes those by value). S3 object bodies, the bulk of the state, are kept apart as content-addressed
blobs: written once, so a commit re-pickles only their metadata.
"""

from __future__ import annotations

import io
import logging
import pickle
import threading
import weakref
from collections import defaultdict
from contextvars import ContextVar
from typing import IO, Any, cast

import cloudpickle
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.backends import get_backend
from moto.s3.models import FakeKey
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from headrace.local.state_store import StateStore

log = logging.getLogger("headrace.local")

# Smaller bodies stay inside the S3 service's pickle: one file and one fsync per tiny object would cost more.
BLOB_MIN_BYTES = 64 * 1024
_BLOB_ATTRIBUTE = "_headrace_blob"
_ATTEMPTS = 5
# The store and the blobs seen, while `restore` unpickles (read by _key_from_blob).
_loading: ContextVar[tuple[StateStore, set[str]]] = ContextVar("_loading")
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
    "sns",
    "scheduler",
    "budgets",
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


def _key_from_blob(cls: type[FakeKey], sha: str, state: dict[str, Any]) -> FakeKey:
    store, referenced = _loading.get()
    referenced.add(sha)
    key = cast(FakeKey, cls.__new__(cls))
    key.__setstate__({**state, "value": store.read_blob(sha)})
    return key


class _StatePickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: IO[bytes], store: StateStore, referenced: set[str], protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self._store = store
        self._referenced = referenced

    def _body_as_blob(self, key: FakeKey) -> Any:
        # A key's body never changes after it is made (moto sets it in __init__ only): hashed once.
        sha: str | None = getattr(key, _BLOB_ATTRIBUTE, None)
        if sha is None:
            try:
                body = key.value
            except ValueError:  # a deleted key's closed buffer: moto's own __getstate__ copes
                return NotImplemented
            sha = self._store.put_blob(body)
            setattr(key, _BLOB_ATTRIBUTE, sha)
        self._referenced.add(sha)
        state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
        return _key_from_blob, (type(key), sha, state)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, FakeKey) and obj.contentsize >= BLOB_MIN_BYTES:
            return self._body_as_blob(obj)
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


def _dumps(value: Any, store: StateStore, referenced: set[str]) -> bytes:
    buffer = io.BytesIO()
    _StatePickler(buffer, store, referenced, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def dump(store: StateStore, services: tuple[str, ...] = SERVICES) -> tuple[dict[str, bytes], set[str]]:
    """Each service's state pickled (S3 bodies written to the store as blobs) and the blobs they name.

    The plane's threads go on changing the backends meanwhile: a dict that changes size under the pickler
    is pickled again. A service that cannot be pickled is left out (its last committed state stands).
    """
    pickled: dict[str, bytes] = {}
    referenced: set[str] = set()
    for service in services:
        for attempt in range(1, _ATTEMPTS + 1):
            blobs: set[str] = set()
            try:
                pickled[service] = _dumps(dict(_backends(service)), store, blobs)
            except RuntimeError as exc:  # "dictionary changed size during iteration"
                if attempt == _ATTEMPTS:
                    log.error("cannot save %s state (changing too fast): %s", service, exc)
            except Exception as exc:
                log.error("cannot save %s state: %s", service, exc)
                break
            else:
                referenced |= blobs
                break
    return pickled, referenced


def restore(store: StateStore) -> set[str] | None:
    """Refill moto's backends from the store's committed state; the blobs it names, or None for a fresh
    directory. Raises StateMismatch for state other versions wrote."""
    saved = store.load()
    if saved is None:
        return None
    referenced: set[str] = set()
    token = _loading.set((store, referenced))
    try:
        # The state is this tool's own files in a private directory the user chose; trusted like the code.
        for service, data in saved.items():
            backends = _backends(service)
            backends.clear()
            backends.update(pickle.loads(data))
    finally:
        _loading.reset(token)
    return referenced
