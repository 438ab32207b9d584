"""Code assets staged at synth time: no pip, no Docker, just files.

A function's asset is its handler folder plus the shared domain package and the validated model configs;
its third-party dependencies come from the AWS-managed layers (headrace/layers.py). A container image's
asset is its build context: the container's own files plus the same domain package, and `usercode/`: empty
for the built-in trainer's shared images, a custom model's own code for that model's images. What the tests
import is what gets deployed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Stage
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

import headrace
from headrace.config import ModelConfig, models_document
from headrace.layers import AWS_SDK_PANDAS_LAYER_PARAMETER, LAMBDA_PYTHON_VERSION, POWERTOOLS_LAYER_PARAMETER
from headrace.usercode import MANIFEST, REQUIREMENTS, USERCODE_DIR
from stacks.bytecode import compile_for_lambda

PACKAGE_DIR = Path(headrace.__file__).resolve().parent
FUNCTIONS_DIR = PACKAGE_DIR.parent / "functions"
MODELS_DOCUMENT = "models.json"
# Edges that never run inside Lambda; they import moto, typer and rich, which no layer provides.
EDGE_SUBPACKAGES = frozenset({"cli", "local"})
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")


def _package_ignore(directory: str, names: list[str]) -> set[str]:
    ignored = set(_CACHES(directory, names))
    if Path(directory).resolve() == PACKAGE_DIR:
        ignored |= EDGE_SUBPACKAGES & set(names)
    return ignored


def stage_function_asset(source: Path, models: Sequence[ModelConfig], destination: Path) -> Path:
    """Lay out one function's deployment package in `destination` (replaced if present) and return it.

    Layout: the handler folder's files at the root (Lambda's handler `handler.handler`), `headrace/` without
    its edges, and `models.json` (the configs as JSON: the Lambda runtime has no YAML parser); and, when the
    synth runs on Lambda's Python (the deploy workflow's 3.12), the package's bytecode (`compile_for_lambda`).
    Only content decides CDK's asset hash, so identical sources give an identical hash wherever they are
    staged with the same Python.
    """
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=_CACHES)
    shutil.copytree(PACKAGE_DIR, destination / "headrace", ignore=_package_ignore)
    (destination / MODELS_DOCUMENT).write_text(models_document(list(models)), encoding="utf-8")
    if sys.version_info[:2] == LAMBDA_PYTHON_VERSION:
        compile_for_lambda(destination)
    return destination


# --- container images: a build context staged at synth time, built by `cdk deploy` (cdk-assets) ------------

CONTAINERS_DIR = PACKAGE_DIR.parent / "containers"
TRAIN_IMAGE_SOURCE = CONTAINERS_DIR / "train"
# What containers/train/Dockerfile copies from its build context, besides the headrace package.
TRAIN_IMAGE_FILES = ("Dockerfile", "requirements.txt", "train", "trainer")
SERVE_IMAGE_SOURCE = CONTAINERS_DIR / "serve"
SERVE_IMAGE_FILES = ("Dockerfile", "requirements.txt", "serve", "inference")


def stage_image_context(
    source: Path, files: Sequence[str], destination: Path, model: ModelConfig | None = None
) -> Path:
    """Lay out one container image's build context in `destination` (replaced if present) and return it.

    Layout: `files` from `source` at the root (modes kept: `train` stays executable), `headrace/` without
    its edges, the package the container imports, and `usercode/`: `model`'s own code (stage_usercode) for
    a custom model's image, else empty (both Dockerfiles copy it: one Dockerfile for both). Synth copies
    this folder into the cloud assembly as is; nothing is built until `cdk deploy` (so synth needs no
    Docker), and the local plane runs the staged `train` directly. Only content decides the asset hash, as
    for the function assets.
    """
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for name in files:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, destination / name, ignore=_CACHES)
        elif path.is_file():
            shutil.copy2(path, destination / name)
        else:
            raise FileNotFoundError(f"{path} is missing: the image built from {source} needs it")
    shutil.copytree(PACKAGE_DIR, destination / "headrace", ignore=_package_ignore)
    if model is None:
        (destination / USERCODE_DIR).mkdir()
    else:
        stage_usercode(model, destination / USERCODE_DIR)
    return destination


def stage_usercode(model: ModelConfig, destination: Path) -> Path:
    """Lay out a custom model's code as its images carry it, in `destination` (replaced if present; an image's
    is `<context>/usercode`), and return it.

    Layout: the model folder's .py files, `requirements.txt` (empty when the model has none: the Dockerfiles
    install nothing for an empty one) and the manifest `usercode.json`: {"model", "entry_point", "sha256" of
    the entry point's bytes}, which headrace.usercode checks before importing the module.
    """
    entry_point = model.entry_point_file
    if entry_point is None or model.code_dir is None:
        raise ValueError(
            f"model '{model.name}': only a framework custom model read from its folder has code to stage"
        )
    if not entry_point.is_file():
        raise FileNotFoundError(f"model '{model.name}': {entry_point} is missing (trainer.entry_point)")
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for module in sorted(model.code_dir.glob("*.py")):
        shutil.copy2(module, destination / module.name)
    requirements = model.code_dir / REQUIREMENTS
    if requirements.is_file():
        shutil.copy2(requirements, destination / REQUIREMENTS)
    else:
        (destination / REQUIREMENTS).write_text("", encoding="utf-8")
    manifest = {
        "model": model.name,
        "entry_point": model.trainer.entry_point,
        "sha256": hashlib.sha256(entry_point.read_bytes()).hexdigest(),
    }
    (destination / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return destination


# --- staging inside the cloud assembly, and the AWS-managed layers every function uses -------------------


def staging_directory(scope: Construct) -> Path:
    """A folder of the cloud assembly for `scope`'s staged files: each synth owns its copy, and `make clean`
    removes it with the assembly."""
    stage = Stage.of(scope)
    assert stage is not None, "a construct always has an enclosing App or Stage"
    return Path(stage.outdir) / ".staging" / scope.node.path.replace("/", "-")


@dataclass(frozen=True)
class ManagedLayers:
    powertools: lambda_.ILayerVersion
    sdk_for_pandas: lambda_.ILayerVersion


def managed_layers(scope: Construct) -> ManagedLayers:
    """The Powertools and AWS SDK for pandas layers (headrace/layers.py), referenced by ARN from the public
    SSM parameters their publishers keep; defined in `scope`, which should ask once."""
    # Both names are region-free (each region's parameter holds its own layer's ARN): CloudFormation
    # parameters whose defaults are the names, resolved at deploy time.
    powertools_arn = ssm.StringParameter.value_for_string_parameter(scope, POWERTOOLS_LAYER_PARAMETER)
    pandas_arn = ssm.StringParameter.value_for_string_parameter(scope, AWS_SDK_PANDAS_LAYER_PARAMETER)
    return ManagedLayers(
        powertools=lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", powertools_arn),
        sdk_for_pandas=lambda_.LayerVersion.from_layer_version_arn(scope, "SdkForPandasLayer", pandas_arn),
    )
