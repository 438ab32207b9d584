"""A custom model in the synthesized app: its own training and serving images, staged from its folder, run
by its training jobs and registered with its versions; built-in models keep the shared pair."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before aws_cdk starts jsii: Node 20's end-of-life banner would otherwise fill every test report.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from headrace.config import ModelConfig, load_model_file, load_models
from headrace.naming import DEFAULT_STAGE, Names
from headrace.usercode import MANIFEST, USERCODE_DIR
from stacks.app_builder import build_app
from tests.support.synth import render, stack_template

REPO = Path(__file__).resolve().parents[2]
CUSTOM = REPO / "tests" / "support" / "custom_models" / "churn-centroid"


@dataclass(frozen=True)
class Synth:
    names: Names
    assembly_dir: Path
    # The training state machine's states per model.
    states: dict[str, dict[str, Any]]
    # asset hash -> the staged build context, for each container image of the pipeline stack.
    images: dict[str, Path]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    names = Names(DEFAULT_STAGE)
    models: list[ModelConfig] = [*load_models(REPO / "models"), load_model_file(CUSTOM / "model.yaml")]
    assembly_dir = tmp_path_factory.mktemp("custom.out")
    app = build_app(names.stage, models, str(assembly_dir))
    pipeline = stack_template(app, names.pipeline_stack)
    app.synth()
    states = {}
    for model in models:
        [machine] = pipeline.find_resources(
            "AWS::StepFunctions::StateMachine",
            {"Properties": {"StateMachineName": names.training_state_machine(model.name)}},
        ).values()
        states[model.name] = json.loads(render(machine["Properties"]["DefinitionString"]))["States"]
    manifest = json.loads((assembly_dir / f"{names.pipeline_stack}.assets.json").read_text())
    images = {
        asset_hash: assembly_dir / image["source"]["directory"]
        for asset_hash, image in manifest["dockerImages"].items()
    }
    return Synth(names, assembly_dir, states, images)


def _image_of(uri: str, synth: Synth) -> Path:
    """The staged context of the image an ECR URI (CDK's container assets repository) names by its tag."""
    tag = uri.rsplit(":", 1)[-1]
    assert tag in synth.images, f"{uri} is not one of the stack's image assets"
    return synth.images[tag]


def _images(synth: Synth, model: str) -> tuple[Path, Path, Path]:
    """The contexts of `model`'s training job image, and of the images its Register step records."""
    states = synth.states[model]
    trained = _image_of(states["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"], synth)
    register = states["Register"]["Parameters"]
    recorded = _image_of(register["image"]["uri"], synth)
    serving = _image_of(register["serving_image"]["uri"], synth)
    assert register["image"]["digest"] == recorded.name.removeprefix("asset.")
    assert register["serving_image"]["digest"] == serving.name.removeprefix("asset.")
    return trained, recorded, serving


def test_a_custom_model_gets_its_own_training_and_serving_images(synth: Synth) -> None:
    assert len(synth.images) == 4  # the shared pair, and the custom model's pair
    trained, recorded, serving = _images(synth, "churn-centroid")
    shared_train, _, shared_serve = _images(synth, "churn")
    assert trained == recorded
    assert trained != shared_train and serving != shared_serve
    assert (trained / "train").is_file() and (serving / "serve").is_file()


def test_the_custom_images_carry_the_models_code_and_manifest(synth: Synth) -> None:
    trained, _, serving = _images(synth, "churn-centroid")
    for context in (trained, serving):
        usercode = context / USERCODE_DIR
        assert (usercode / "model.py").read_bytes() == (CUSTOM / "model.py").read_bytes()
        assert (usercode / "requirements.txt").read_bytes() == (CUSTOM / "requirements.txt").read_bytes()
        manifest = json.loads((usercode / MANIFEST).read_text())
        assert (manifest["model"], manifest["entry_point"]) == ("churn-centroid", "model.py")
        assert not (usercode / "model.yaml").exists()


def test_the_shared_images_have_an_empty_usercode_folder(synth: Synth) -> None:
    trained, _, serving = _images(synth, "churn")
    for context in (trained, serving):
        assert (context / USERCODE_DIR).is_dir()
        assert list((context / USERCODE_DIR).iterdir()) == []


def test_both_dockerfiles_copy_usercode_and_install_its_requirements(synth: Synth) -> None:
    for context in synth.images.values():
        dockerfile = (context / "Dockerfile").read_text()
        assert "COPY usercode /opt/program/usercode" in dockerfile
        assert "-r /opt/program/usercode/requirements.txt" in dockerfile
