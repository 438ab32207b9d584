"""What a synth run is asked for: stage, models directory, output folder and CDK context.

Pure Python on purpose (no aws_cdk import): `app.py` validates the model config before jsii starts, so a bad
config fails in a fraction of a second with the config's own message.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace.naming import DEFAULT_STAGE
from headrace.stages import STAGES_FILE_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"
MODELS_DIR_ENV = "HEADRACE_MODELS_DIR"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's `context` (feature flags, default stage).

    The CDK CLI hands it to the app through CDK_CONTEXT_JSON; `python app.py` and in-process callers have no
    CLI, so they read it here. Without this the two ways of synthesizing would apply different feature flags.
    """
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context) if isinstance(context, dict) else {}


def _argv_context(argv: Sequence[str]) -> dict[str, str]:
    """`-c key=value` / `--context key=value` pairs (the CDK CLI's syntax): `python app.py -c stage=prod`."""
    pairs: dict[str, str] = {}
    for flag, value in itertools.pairwise([*argv, ""]):
        if flag in ("-c", "--context") and "=" in value:
            key, _, val = value.partition("=")
            pairs[key] = val
    return pairs


def _overflow_context(environ: Mapping[str, str]) -> dict[str, Any]:
    """Context the CDK CLI wrote to a file because it was too large for an environment variable (as cdk.App
    reads it: aws-cdk-lib core/lib/app.js, readContextFromTempFile)."""
    location = environ.get("CONTEXT_OVERFLOW_LOCATION_ENV")
    if not location:
        return {}
    context = json.loads(Path(location).read_text(encoding="utf-8"))
    return dict(context) if isinstance(context, dict) else {}


@dataclass(frozen=True)
class AppSettings:
    stage: str
    models_dir: Path | None
    outdir: str | None
    # None: the repository's stages.yaml (headrace/stages.py).
    stages_file: Path | None = None
    context: dict[str, Any] = field(default_factory=dict)


def settings_from(argv: Sequence[str], environ: Mapping[str, str]) -> AppSettings:
    """Precedence, highest first: `-c` on the command line, the CDK CLI's context (CDK_CONTEXT_JSON or its
    overflow file), cdk.json.

    The models directory comes from context `models_dir`, else $HEADRACE_MODELS_DIR, else the repo's models/;
    the stages file from context `stages_file`, else $HEADRACE_STAGES_FILE, else the repo's stages.yaml.
    """
    context: dict[str, Any] = {
        **cdk_json_context(),
        **json.loads(environ.get("CDK_CONTEXT_JSON") or "{}"),
        **_overflow_context(environ),
        **_argv_context(argv),
    }
    models_dir = context.get("models_dir") or environ.get(MODELS_DIR_ENV)
    stages_file = context.get("stages_file") or environ.get(STAGES_FILE_ENV)
    return AppSettings(
        stage=str(context.get("stage") or DEFAULT_STAGE),
        models_dir=Path(models_dir) if models_dir else None,
        # None lets CDK pick its own temporary folder, as `python app.py` does without the CLI.
        outdir=environ.get("CDK_OUTDIR") or None,
        stages_file=Path(stages_file) if stages_file else None,
        context=context,
    )
