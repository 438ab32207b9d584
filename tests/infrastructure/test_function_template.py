"""Every Lambda function of the synthesized pipeline, found in the template rather than listed by hand: its
environment is exactly what its handler's settings parse, and one that ships without the AWS SDK for pandas
layer imports without pandas (its packaged asset, as Lambda would load it)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from headrace.lambda_env import FunctionSettings
from headrace.layers import AWS_SDK_PANDAS_LAYER_PARAMETER, SDK_FOR_PANDAS_ENVIRONMENT
from stacks.assets import FUNCTIONS_DIR
from stacks.idle import idle_models
from stacks.ingest import INGEST_SERVICE
from stacks.wiring import Wiring, WiringError
from tests.support.synth import SynthesizedApp

HEAVY_MODULES = ("pandas", "numpy", "pyarrow")


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    folder: str
    asset: Path
    properties: dict[str, Any]
    # The public SSM parameter names the function's layers are read from (template parameters' defaults).
    layer_parameters: tuple[str, ...]

    @property
    def environment(self) -> dict[str, Any]:
        variables: dict[str, Any] = self.properties["Environment"]["Variables"]
        return variables

    @property
    def has_pandas_layer(self) -> bool:
        return AWS_SDK_PANDAS_LAYER_PARAMETER in self.layer_parameters


def _folder_of(asset: Path) -> str:
    """The functions/ folder whose handler the asset ships."""
    shipped = (asset / "handler.py").read_bytes()
    [folder] = [
        f.name
        for f in FUNCTIONS_DIR.iterdir()
        if (f / "handler.py").is_file() and (f / "handler.py").read_bytes() == shipped
    ]
    return folder


@pytest.fixture(scope="module")
def deployed(synthesized: SynthesizedApp) -> list[DeployedFunction]:
    found = []
    parameters = synthesized.pipeline.to_json()["Parameters"]
    for resource in synthesized.pipeline.find_resources("AWS::Lambda::Function").values():
        properties = resource["Properties"]
        if properties.get("Handler") != "handler.handler":
            continue  # CDK's own helpers (bucket notifications)
        asset = synthesized.assembly_dir / f"asset.{properties['Code']['S3Key'].removesuffix('.zip')}"
        layers = tuple(parameters[layer["Ref"]]["Default"] for layer in properties["Layers"])
        name = properties["FunctionName"]
        found.append(DeployedFunction(name, _folder_of(asset), asset, properties, layers))
    return found


def _settings_of(folder: str) -> type[FunctionSettings]:
    """The settings class the folder's handler parses: the most derived FunctionSettings it imports."""
    handler = importlib.import_module(f"functions.{folder}.handler")
    classes = {
        value
        for value in vars(handler).values()
        if isinstance(value, type) and issubclass(value, FunctionSettings)
    }
    [settings] = [c for c in classes if not any(other is not c and issubclass(other, c) for other in classes)]
    return settings


def test_every_function_folder_is_deployed_once(
    synthesized: SynthesizedApp, deployed: list[DeployedFunction]
) -> None:
    folders = {handler.parent.name for handler in FUNCTIONS_DIR.glob("*/handler.py")}
    shipped = [function.folder for function in deployed]
    assert len(shipped) == len(set(shipped))
    # The idle sweep is built only when a model sets rollout.idle_hours (test_idle_template.py).
    optional = {"idle_endpoints"} if not idle_models(synthesized.models) else set()
    # TuningResult is built only when a model sets trainer.tuning (test_tuning_template.py).
    if not any(m.trainer.tuning is not None for m in synthesized.models):
        optional.add("tuning_result")
    assert set(shipped) == folders - optional


def test_each_function_gets_exactly_the_variables_its_settings_parse(
    synthesized: SynthesizedApp, deployed: list[DeployedFunction]
) -> None:
    for function in deployed:
        settings = _settings_of(function.folder)
        # Optional fields (the local-only models folder) stay unset in the cloud; ingest's batch state
        # machines are optional to parse (a caller may wire no batch scoring) but always wired.
        parsed = {
            str(f.alias)
            for f in settings.model_fields.values()
            if f.is_required() or f.alias == "BATCH_STATE_MACHINES"
        }
        # Besides: a function with the pandas layer's numpy gets OpenBLAS' one thread (headrace.layers).
        runtime = set(SDK_FOR_PANDAS_ENVIRONMENT) if function.has_pandas_layer else set()
        assert set(function.environment) == parsed | runtime, function.folder
        assert all(
            function.environment[k] == v for k, v in SDK_FOR_PANDAS_ENVIRONMENT.items() if k in runtime
        )
        assert function.environment["HEADRACE_STAGE"] == synthesized.names.stage
        service = INGEST_SERVICE if function.folder == "ingest" else function.name
        assert function.environment["POWERTOOLS_SERVICE_NAME"] == service


def test_a_settings_field_the_wiring_cannot_fill_fails_the_synth_naming_it() -> None:
    class NeedsAQueue(FunctionSettings):
        queue_url: str = Field(alias="QUEUE_URL")

    wiring = Wiring(values={"metrics_namespace": "Headrace", "stage": "dev", "ledger_table": "ledger"})
    with pytest.raises(WiringError, match=r"NeedsAQueue declares queue_url \(QUEUE_URL\)"):
        wiring.environment(NeedsAQueue, "headrace-dev-example")


def test_functions_without_the_pandas_layer_import_without_pandas(deployed: list[DeployedFunction]) -> None:
    # The 400 ms cold-start budget leaves no room for pandas where it is not needed; only the functions whose
    # template gives them the layer may import it.
    probe = (
        "import sys; import handler; "
        f"print(','.join(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))"
    )
    light = [function for function in deployed if not function.has_pandas_layer]
    assert light, "expected functions without the AWS SDK for pandas layer"
    for function in light:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=function.asset,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (function.folder, done.stderr)
        assert done.stdout.strip() == "", function.folder
