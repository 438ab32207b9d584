#!/usr/bin/env python3
"""Synthesizes Headrace's CloudFormation: `python app.py` (no CDK CLI, no AWS account) or `cdk synth`.

Context: `-c stage=prod` (default dev), `-c models_dir=...` (else $HEADRACE_MODELS_DIR, else models/),
`-c stages_file=...` (else $HEADRACE_STAGES_FILE, else stages.yaml: each stage's policies).
An invalid model config or stages file exits with status 2 and its own message (file, field, problem) on
stderr.
"""

from __future__ import annotations

import os
import sys

from headrace.config import ConfigError, load_models
from headrace.naming import Names
from headrace.stages import load_stage, promoting_accounts
from stacks.settings import settings_from

EXIT_INVALID_CONFIG = 2


def main() -> int:
    settings = settings_from(sys.argv[1:], os.environ)
    try:
        Names(settings.stage)
        models = load_models(settings.models_dir)
        stage = load_stage(settings.stage, settings.stages_file)
    except (ConfigError, ValueError) as exc:
        print(f"headrace: {exc}", file=sys.stderr)
        return EXIT_INVALID_CONFIG

    # Node 20 is what these machines have; its end-of-life banner would bury the synth output.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # Imported only now: starting jsii takes seconds, and a bad config should fail before that.
    from stacks.app_builder import build_app

    try:
        build_app(
            settings.stage,
            models,
            settings.outdir,
            context=settings.context,
            settings=stage,
            promoting=promoting_accounts(settings.stage, settings.stages_file),
        ).synth()
    except ValueError as exc:
        # Constructs refuse combinations a single config field cannot express (e.g. split fractions).
        print(f"headrace: {exc}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())
