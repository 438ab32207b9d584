"""The local plane's state directory on disk: crash-safe, private, and tied to the versions that wrote it.

Layout (every directory 0700, every file 0600: the state holds a team's data, keys and private keys):

    manifest.json            which service file holds each service's state, and the writers' versions
    services/<sha256>        one pickled moto service, named for its content
    blobs/<ab>/<sha256>      one S3 object body, named for its content (the bulk of the state)

A commit writes the files it needs under new names (fsynced), then replaces the manifest atomically (temporary
file, fsync, rename, fsync of the directory): a crash at any moment leaves the previous manifest or the new
one, never a mix. Files no manifest names any more are removed afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import BaseModel

log = logging.getLogger("headrace.local")

MANIFEST = "manifest.json"
FORMAT = 2
# The snapshot `local down` wrote before state was committed continuously (no versions recorded).
LEGACY_SNAPSHOT = "moto-state.pickle"
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class StateMismatch(ValueError):
    """A state directory this plane must not load (other versions, another format)."""


def current_versions() -> dict[str, str]:
    """What a pickle of moto's objects depends on: Python's minor version, moto's and Headrace's."""

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "unknown"

    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "moto": installed("moto"),
        "headrace": installed("headrace"),
    }


class Manifest(BaseModel):
    format: int = FORMAT
    versions: dict[str, str]
    # service name -> sha256 of its file under services/
    services: dict[str, str] = {}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _private_directory(directory: Path) -> None:
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    directory.chmod(DIRECTORY_MODE)  # mkdir's mode passes through the umask; an existing one may be wider


def _write_durably(path: Path, data: bytes) -> None:
    """Write `path` all at once: a reader sees the old file or the whole new one, also after a crash."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    temporary.replace(path)
    _fsync_directory(path.parent)


class StateStore:
    """One plane's state directory. Not thread-safe: the plane's committer is its only writer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        _private_directory(root)
        _private_directory(root / "services")
        _private_directory(root / "blobs")
        # What a crash left half-written; no manifest names it.
        for leftover in (*root.glob(".*.tmp"), *root.glob("*/.*.tmp"), *root.glob("blobs/*/.*.tmp")):
            leftover.unlink(missing_ok=True)
        self._committed: dict[str, str] = {}
        # The committed bytes too: comparing them is cheaper than hashing megabytes on every commit.
        self._committed_bytes: dict[str, bytes] = {}

    # Loading

    def load(self) -> dict[str, bytes] | None:
        """Each service's committed state; None for a fresh directory. Refuses other versions' state."""
        manifest_path = self.root / MANIFEST
        if not manifest_path.exists():
            if (self.root / LEGACY_SNAPSHOT).exists():
                raise StateMismatch(
                    f"{self.root} holds a snapshot from an older Headrace ({LEGACY_SNAPSHOT}, no versions "
                    "recorded) that this version cannot load; start with a new --state-dir"
                )
            return None
        try:
            manifest = Manifest.model_validate_json(manifest_path.read_bytes())
        except ValueError as exc:
            raise StateMismatch(f"{manifest_path} is not a Headrace state manifest: {exc}") from None
        if manifest.format != FORMAT or manifest.versions != current_versions():
            raise StateMismatch(
                f"the state in {self.root} was written by {self._described(manifest)}; this plane runs "
                f"{self._described(Manifest(versions=current_versions()))}. moto's pickled objects do not "
                "load across versions: run the versions that wrote it, or start with a new --state-dir"
            )
        folder = self.root / "services"
        services = {name: (folder / sha).read_bytes() for name, sha in manifest.services.items()}
        self._committed = dict(manifest.services)
        self._committed_bytes = dict(services)
        return services

    @staticmethod
    def _described(manifest: Manifest) -> str:
        versions = ", ".join(f"{name} {value}" for name, value in sorted(manifest.versions.items()))
        return f"{versions} (state format {manifest.format})"

    # Blobs: content-addressed, written once, before any manifest names them

    def _blob_path(self, sha: str) -> Path:
        return self.root / "blobs" / sha[:2] / sha

    def put_blob(self, data: bytes) -> str:
        sha = _digest(data)
        path = self._blob_path(sha)
        if not path.exists():
            _private_directory(path.parent)
            _write_durably(path, data)
        return sha

    def read_blob(self, sha: str) -> bytes:
        return self._blob_path(sha).read_bytes()

    # Commits

    def commit(self, services: Mapping[str, bytes]) -> bool:
        """Make `services` the committed state (services not named keep their last state); False when
        nothing had changed, so nothing was written."""
        names = dict(self._committed)
        for service, data in services.items():
            if self._committed_bytes.get(service) == data:
                continue
            sha = _digest(data)
            path = self.root / "services" / sha
            if not path.exists():
                _write_durably(path, data)
            names[service] = sha
        if names == self._committed and (self.root / MANIFEST).exists():
            return False
        manifest = Manifest(versions=current_versions(), services=names)
        _write_durably(self.root / MANIFEST, manifest.model_dump_json(indent=1).encode())
        superseded = set(self._committed.values()) - set(names.values())
        self._committed = names
        self._committed_bytes.update(services)
        for sha in superseded:
            with contextlib.suppress(FileNotFoundError):
                (self.root / "services" / sha).unlink()
        return True

    def collect_blobs(self, referenced: Iterable[str]) -> int:
        """Remove the blobs the committed state no longer names; returns how many. Call it only with every
        blob the committed manifest's services reference, and with no commit running."""
        keep = set(referenced)
        removed = 0
        for path in (self.root / "blobs").glob("*/*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
