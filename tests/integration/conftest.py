"""The CDK app synthesized once per session, in-process, as `app.py` builds it for the shipped models."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# Before aws_cdk starts jsii: Node 20's end-of-life banner would otherwise fill every test report.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from headrace.config import ModelConfig, load_models
from headrace.naming import DEFAULT_STAGE, Names
from stacks.app_builder import build_app


def stack_template(app: App, stack_name: str) -> Template:
    stack = app.node.find_child(stack_name)
    assert isinstance(stack, Stack)
    return Template.from_stack(stack)


@dataclass(frozen=True)
class SynthesizedApp:
    names: Names
    models: list[ModelConfig]
    assembly_dir: Path
    data: Template
    pipeline: Template


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    names = Names(DEFAULT_STAGE)
    models = load_models()
    assembly_dir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(names.stage, models, str(assembly_dir))
    return SynthesizedApp(
        names=names,
        models=models,
        assembly_dir=assembly_dir,
        data=stack_template(app, names.data_stack),
        pipeline=stack_template(app, names.pipeline_stack),
    )
