"""The CDK app as a function: `app.py`, the template tests and the local plane all build it the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk

from headrace.config import ModelConfig
from headrace.naming import Names
from headrace.stages import StageSettings, load_stage, promoting_accounts
from stacks.data_stack import DataStack
from stacks.pipeline_stack import PipelineStack
from stacks.settings import cdk_json_context


def build_app(
    stage: str,
    models: Sequence[ModelConfig],
    outdir: str | None = None,
    *,
    context: Mapping[str, Any] | None = None,
    env: cdk.Environment | None = None,
    settings: StageSettings | None = None,
    promoting: Sequence[str] | None = None,
) -> cdk.App:
    """Both stacks of one stage, for the validated `models`; call `.synth()` on the result to write them.

    `context` defaults to cdk.json's, so in-process callers get the feature flags `cdk synth` applies.
    `env` left out keeps the stacks environment-agnostic: one template for every account and region.
    `settings` (the stage's policies) default to the repository's stages.yaml section for `stage`, and
    `promoting` (the accounts of other-account stages that promote from it) to what that file says.
    """
    names = Names(stage)
    settings = settings or load_stage(stage)
    # What the stage deploys: endpoint sizes and guard thresholds over each model's own (stages.yaml
    # `serving`); the functions' models.json and the templates both see the applied configs.
    models = [settings.apply(model) for model in models]
    app = cdk.App(outdir=outdir, context=dict(cdk_json_context() if context is None else context))
    data = DataStack(
        app,
        names.data_stack,
        names=names,
        stage=settings,
        models=[model.name for model in models],
        promoting_accounts=promoting_accounts(stage) if promoting is None else promoting,
        env=env,
    )
    # The pipeline's references to the data stack's resources make CDK order the deploys as Names.stacks does.
    PipelineStack(
        app,
        names.pipeline_stack,
        names=names,
        models=models,
        store=data.store,
        alerts=data.alerts,
        stage=settings,
        env=env,
    )
    return app
