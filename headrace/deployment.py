"""What a deployment is made of, read from its stacks' outputs: the one place callers learn resource names."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from headrace.config import ModelConfig
from headrace.naming import Names, Outputs
from headrace.training.payloads import ImageInfo


class DeploymentNotFound(RuntimeError):
    """The deployment's stacks do not exist (not deployed, or the local plane is not running)."""


class DeploymentUnreachable(RuntimeError):
    """AWS (or the endpoint in AWS_ENDPOINT_URL) did not answer, or refused the credentials."""


class ColumnInfo(BaseModel):
    """A column as ingest checks it: the whole rule (range, categories), so a script can build valid rows."""

    name: str
    type: str
    nullable: bool
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    description: str = ""


class SchemaInfo(BaseModel):
    columns: list[ColumnInfo]
    target: str
    fingerprint: str
    min_rows: int | None = None
    max_file_mb: float | None = None
    max_null_fraction: float | None = None


class ModelInfo(BaseModel):
    name: str
    data_bucket: str
    incoming_prefix: str
    quarantine_prefix: str
    datasets_prefix: str
    schema_: SchemaInfo = Field(alias="schema")
    training_state_machine_arn: str
    endpoint_name: str
    # None for a pipeline stack deployed before the deploy workflow existed (no such output).
    deploy_state_machine_arn: str | None = None
    drift_state_machine_arn: str | None = None
    quality_state_machine_arn: str | None = None
    # The serving image this stage's stacks run the model with; None for a stack deployed before the
    # ServingImage outputs existed.
    serving_image: ImageInfo | None = None

    model_config = ConfigDict(populate_by_name=True)


class DeploymentInfo(BaseModel):
    stage: str
    data_bucket: str
    ledger_table: str
    ingest_function: str
    models: list[ModelInfo]

    def model(self, name: str) -> ModelInfo:
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models) or "none"
        raise KeyError(f"no model named '{name}' in stage {self.stage} (known: {known})")


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise DeploymentNotFound(
            f"stack {stack_name} not found: deploy it (`cdk deploy`) "
            "or start the local plane (`headrace local up`)"
        ) from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def describe(cloudformation: Any, names: Names, models: list[ModelConfig]) -> DeploymentInfo:
    data = stack_outputs(cloudformation, names.data_stack)
    pipeline = stack_outputs(cloudformation, names.pipeline_stack)
    bucket = data[Outputs.DATA_BUCKET]
    return DeploymentInfo(
        stage=names.stage,
        data_bucket=bucket,
        ledger_table=data[Outputs.LEDGER_TABLE],
        ingest_function=pipeline[Outputs.INGEST_FUNCTION],
        models=[
            ModelInfo(
                name=m.name,
                data_bucket=bucket,
                incoming_prefix=m.incoming_prefix,
                quarantine_prefix=m.quarantine_prefix,
                datasets_prefix=m.datasets_prefix,
                schema_=SchemaInfo(
                    columns=[ColumnInfo.model_validate(c.model_dump(mode="json")) for c in m.data.columns],
                    target=m.data.target,
                    fingerprint=m.data.fingerprint(),
                    min_rows=m.data.min_rows,
                    max_file_mb=m.data.max_file_mb,
                    max_null_fraction=m.data.max_null_fraction,
                ),
                training_state_machine_arn=pipeline[Outputs.training_state_machine(m.name)],
                endpoint_name=pipeline.get(Outputs.endpoint(m.name), names.endpoint(m.name)),
                deploy_state_machine_arn=pipeline.get(Outputs.deploy_state_machine(m.name)),
                drift_state_machine_arn=pipeline.get(Outputs.drift_state_machine(m.name)),
                quality_state_machine_arn=pipeline.get(Outputs.quality_state_machine(m.name)),
                serving_image=serving_image(pipeline, m.name),
            )
            for m in models
        ],
    )


def serving_image(pipeline: dict[str, str], model: str) -> ImageInfo | None:
    """The serving image the pipeline stack's outputs name for `model`, if they name one."""
    uri = pipeline.get(Outputs.serving_image(model))
    digest = pipeline.get(Outputs.serving_image_digest(model))
    return ImageInfo(uri=uri, digest=digest) if uri and digest else None


def deployment_of(cloudformation: Any, names: Names, models: list[ModelConfig]) -> DeploymentInfo:
    """`describe`, with every way of not reaching the deployment raised as one of this module's errors."""
    try:
        return describe(cloudformation, names, models)
    except (BotoCoreError, ClientError) as exc:
        raise DeploymentUnreachable(f"cannot reach AWS: {exc}") from exc
