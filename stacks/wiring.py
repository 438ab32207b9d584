"""A function's environment, computed from the settings class its handler parses at cold start.

The settings classes (headrace/*/settings, headrace.lambda_env.FunctionSettings) name the variables; the
`Wiring` is the one map from a settings field to the CDK value that fills it. So a function gets exactly the
variables its settings parse, and a settings field no stack can fill fails the synth, naming the field,
instead of failing the function's first invocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsii
from aws_cdk import IStableStringProducer, Lazy, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.lambda_env import FunctionSettings
from headrace.layers import SDK_FOR_PANDAS_ENVIRONMENT
from headrace.naming import Names
from stacks.data_store import DataStore

DEFAULT_EVENT_BUS = "default"
# Filled per function by the factory: Powertools' service name, which the function's metrics carry.
SERVICE_NAME_FIELD = "service_name"


class WiringError(ValueError):
    """A settings field that no value in the wiring fills; the message names the class and the field."""


@jsii.implements(IStableStringProducer)
class _TrainingMachinesDocument:
    """`{model: state machine ARN}` as JSON, produced at synth time: the functions that start training runs
    are built before (and beside) the models' state machines, which register here as they are made."""

    def __init__(self, stack: Stack, machines: Mapping[str, sfn.IStateMachine]) -> None:
        self._stack = stack
        self._machines = machines

    def produce(self) -> str | None:
        return self._stack.to_json_string(
            {model: machine.state_machine_arn for model, machine in sorted(self._machines.items())}
        )


@dataclass(frozen=True)
class Wiring:
    """Every value a function's settings may ask for, by settings field name."""

    values: Mapping[str, str]
    # The models' training state machines, registered as each model's construct makes its own.
    training_machines: dict[str, sfn.IStateMachine] = field(default_factory=dict)
    # The models' batch state machines (issue 17), registered the same way.
    batch_machines: dict[str, sfn.IStateMachine] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Construct, names: Names, store: DataStore) -> Wiring:
        machines: dict[str, sfn.IStateMachine] = {}
        batch: dict[str, sfn.IStateMachine] = {}
        document = Lazy.string(_TrainingMachinesDocument(Stack.of(scope), machines))
        return cls(
            values={
                "metrics_namespace": names.metric_namespace,
                "stage": names.stage,
                "ledger_table": store.ledger.table_name,
                "data_bucket": store.bucket.bucket_name,
                "event_bus_name": DEFAULT_EVENT_BUS,
                "training_state_machines": document,
                "batch_state_machines": Lazy.string(_TrainingMachinesDocument(Stack.of(scope), batch)),
            },
            training_machines=machines,
            batch_machines=batch,
        )

    def add_training_machine(self, model: str, machine: sfn.IStateMachine) -> None:
        self.training_machines[model] = machine

    def add_batch_machine(self, model: str, machine: sfn.IStateMachine) -> None:
        self.batch_machines[model] = machine

    def environment(
        self, settings: type[FunctionSettings], service_name: str, *, pandas_layer: bool = False
    ) -> dict[str, str]:
        """The variables `settings` parses, each with its wired value. Optional fields the wiring does not
        fill (HEADRACE_MODELS_DIR: tests and the local plane only) are left out. With the AWS SDK for
        pandas layer, also what its libraries read as they load (headrace.layers)."""
        values: dict[str, Any] = {**self.values, SERVICE_NAME_FIELD: service_name}
        environment: dict[str, str] = {}
        unwired: list[str] = []
        for name, info in settings.model_fields.items():
            variable = str(info.alias or name)
            if name in values:
                environment[variable] = values[name]
            elif info.is_required():
                unwired.append(f"{name} ({variable})")
        if unwired:
            raise WiringError(
                f"{settings.__name__} declares {', '.join(unwired)}, which no value in the stack's wiring "
                "fills (stacks/wiring.py, Wiring.of)"
            )
        return {**environment, **(SDK_FOR_PANDAS_ENVIRONMENT if pandas_layer else {})}
