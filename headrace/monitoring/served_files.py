"""Where a model's checks keep their files, and the serving version's files they read: copied once per
version out of its model artifact. Its own module so the quality check's steps use them without importing
the drift check's (headrace.monitoring.check: its results and payloads, paid at every cold start)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

from headrace.ports import ListingStore

REFERENCE_FILES = ("profile.json", "features.json")


def monitoring_prefix(model: str) -> str:
    return f"{model}/monitoring"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def copy_reference(
    store: ListingStore, bucket: str, model: str, model_data_url: str, files: Sequence[str] = REFERENCE_FILES
) -> str:
    """Files of the serving version's artifact, where Partial reads them (once per version): the drift
    check's reference, or what the quality check needs (features.json, evaluation.json)."""
    prefix = (
        f"{monitoring_prefix(model)}/reference/{hashlib.sha256(model_data_url.encode()).hexdigest()[:16]}"
    )
    if all(store.exists(bucket, f"{prefix}/{name}") for name in files):
        return prefix
    # Once per serving version, by a Window step: the checks' other steps do not import tarfile (~1.5 ms).
    import tarfile

    archive = store.read(*_split(model_data_url))
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        found = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        for name in files:
            if name not in found:
                raise ValueError(f"{model_data_url} has no {name}: the trainer writes it beside the model")
            extracted = tar.extractfile(found[name])
            assert extracted is not None
            store.put(bucket, f"{prefix}/{name}", extracted.read(), "application/json")
    return prefix
