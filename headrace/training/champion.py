"""The champion channel of a training job (containers/train/CONTRACT.md): a copy of the newest Approved
version's artifact (its ModelDataUrl) at `<run>/splits/champion/model.tar.gz`, so the trainer scores the
champion on the run's own test split; or `none.json` saying why there is none to score."""

from __future__ import annotations

import json

from headrace.ports import ObjectStore
from headrace.training.layout import CHAMPION_ARTIFACT, NO_CHAMPION, OUTPUT_KEYS, RunLayout, split_s3_uri
from headrace.training.payloads import ChampionInfo


def _readable(champion: ChampionInfo, layout: RunLayout) -> str | None:
    """Why the champion's artifact cannot be copied (None when it can): Prepare may read only training
    outputs of this model in this bucket (`<model>/runs/*/output/*`, its IAM grant)."""
    if not champion.model_data_url:
        return f"version {champion.version} has no ModelDataUrl"
    try:
        bucket, key = split_s3_uri(champion.model_data_url)
    except ValueError as exc:
        return f"version {champion.version}: {exc}"
    parts = key.split("/")
    if (
        bucket != layout.bucket
        or len(parts) < 4
        or parts[:2] != [layout.model, "runs"]
        or parts[3] != "output"
    ):
        return (
            f"version {champion.version}'s artifact {champion.model_data_url} is not a training output of "
            f"this model (s3://{layout.bucket}/{layout.model}/{OUTPUT_KEYS.removeprefix('*/')})"
        )
    return None


def write_champion_channel(
    store: ObjectStore, layout: RunLayout, champion: ChampionInfo | None
) -> tuple[int | None, str]:
    """Fill the run's champion channel; returns the version copied (None for none.json) and, in words, what
    the channel holds, for the run's log."""
    why = "no approved version yet" if champion is None else _readable(champion, layout)
    if champion is None or why is not None:
        document = {"champion": None, "reason": why}
        store.put(
            layout.bucket, layout.champion_key(NO_CHAMPION), json.dumps(document).encode(), "application/json"
        )
        return None, f"no champion: {why}"
    bucket, key = split_s3_uri(champion.model_data_url or "")
    store.put(
        layout.bucket, layout.champion_key(CHAMPION_ARTIFACT), store.read(bucket, key), "application/gzip"
    )
    return champion.version, f"champion version {champion.version} ({champion.model_data_url})"
