"""What differs between the stages of one deployment (dev, prod, ...): the same models, other policies.

`stages.yaml` at the repository root holds one section per stage; `python app.py -c stage=prod` (or
`cdk synth -c stage=prod`) deploys the prod section's policies. A stage the file does not name gets the
defaults below: dev's policies, without a budget. The file is validated like the model configs: an unknown
key or a bad value fails the synth with a message naming the file, the stage and the field.

The CDK app reads it. What a function applies at run time reaches it from the synth, so a deployed function
needs no YAML parser: the approval policy and the serving overrides through the models themselves
(`StageSettings.apply`, in each function's models.json), the network settings in the payload the deploy
workflow passes Plan, which creates each version's Model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from headrace.config import ModelConfig
from headrace.naming import STAGE_PATTERN

STAGES_FILE = Path(__file__).resolve().parent.parent / "stages.yaml"
STAGES_FILE_ENV = "HEADRACE_STAGES_FILE"

# `model`: each model's own gate.approval decides; `manual` / `auto`: the stage decides for every model.
ApprovalPolicy = Literal["model", "manual", "auto"]
# The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy, retentionInDays).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
_SUBNET = r"^subnet-[0-9a-f]{8,17}$"
_SECURITY_GROUP = r"^sg-[0-9a-f]{8,17}$"
# Deliberately loose: SNS sends a confirmation mail, which is the real check.
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# An AWS account ID is 12 digits (https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-identifiers.html).
_ACCOUNT = r"^[0-9]{12}$"
# A commercial, China or GovCloud region code like us-east-1, eu-central-2, us-gov-west-1, cn-north-1.
_REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VpcSettings(_Strict):
    """An existing VPC's private subnets and security groups for training jobs and endpoints.

    SageMaker reaches S3, ECR and CloudWatch Logs from there on the jobs' behalf: the subnets need an S3
    gateway endpoint and interface endpoints for ecr.api, ecr.dkr and logs (or a NAT gateway).
    """

    subnet_ids: Annotated[list[Annotated[str, Field(pattern=_SUBNET)]], Field(min_length=1, max_length=16)]
    security_group_ids: Annotated[
        list[Annotated[str, Field(pattern=_SECURITY_GROUP)]], Field(min_length=1, max_length=5)
    ]


class NetworkSettings(_Strict):
    """Where SageMaker runs a stage's training jobs and endpoint containers."""

    isolation: bool = False
    vpc: VpcSettings | None = None

    def request_fields(self) -> dict[str, Any]:
        """EnableNetworkIsolation and VpcConfig, as CreateTrainingJob and CreateModel both take them."""
        fields: dict[str, Any] = {"EnableNetworkIsolation": self.isolation}
        if self.vpc is not None:
            fields["VpcConfig"] = {
                "SecurityGroupIds": list(self.vpc.security_group_ids),
                "Subnets": list(self.vpc.subnet_ids),
            }
        return fields


class ServingOverrides(_Strict):
    """What a stage sets for every model's endpoints, over the models' own `rollout` sections: sizes and
    the rollout guards. Unset fields leave each model's value."""

    # At least this many instances per endpoint (a canary needs a fleet to take a share of; prod wants 2+).
    min_instance_count: Annotated[int, Field(ge=1, le=20)] | None = None
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] | None = None
    max_5xx_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    max_p99_latency_ms: Annotated[float, Field(gt=0)] | None = None


class StageSettings(_Strict):
    """One stage's policies. The defaults are dev's (cheap to tear down, each model's own approval policy),
    without a budget: an amount is the account owner's call."""

    approval: ApprovalPolicy = "model"
    # Every Lambda function's, state machine's and trail's log group.
    log_retention_days: int = 30
    # `retain`: the key, buckets, ledger table and log groups outlive the stacks. `destroy`: they go with
    # them (CloudFormation deletes a bucket only once it is empty; KMS deletes the key after 7 days).
    removal: Literal["retain", "destroy"] = "destroy"
    # A monthly AWS Budgets cost budget for the stage's tagged resources, in USD; None: no budget.
    budget_usd: Annotated[float, Field(gt=0)] | None = None
    # CloudTrail data events (object reads and writes) of the data bucket, which also holds every model
    # artifact, into a trail of their own.
    cloudtrail_data_events: bool = False
    # Training jobs and endpoint containers run without any network access (EnableNetworkIsolation).
    network_isolation: bool = False
    vpc: VpcSettings | None = None
    # Subscribed to the stage's alerts topic (every alarm, the budget); SNS asks it to confirm.
    alarm_email: Annotated[str, Field(pattern=_EMAIL)] | None = None
    # Endpoint sizes and rollout guard thresholds for every model in this stage.
    serving: ServingOverrides = Field(default_factory=ServingOverrides)
    # Where the stage is deployed; None: the account and region of the credentials that deploy it.
    account: Annotated[str, Field(pattern=_ACCOUNT)] | None = None
    region: Annotated[str, Field(pattern=_REGION)] | None = None
    # The stage whose Approved versions this one takes with `headrace promote` (prod: dev); None: none.
    promote_from: Annotated[str, Field(pattern=STAGE_PATTERN)] | None = None

    def apply(self, model: ModelConfig) -> ModelConfig:
        """`model` as this stage deploys it: the approval policy applied to its gate section (`manual` or
        `auto` replace its gate.approval; prod: every version waits for a person), the serving overrides to
        its rollout section."""
        sections: dict[str, Any] = {}
        if self.approval != "model" and self.approval != model.gate.approval:
            sections["gate"] = model.gate.model_copy(update={"approval": self.approval})
        rollout = model.rollout
        changes: dict[str, Any] = {}
        wanted = self.serving
        if wanted.min_instance_count is not None and rollout.instance_count < wanted.min_instance_count:
            changes["instance_count"] = wanted.min_instance_count
        for field in ("instance_type", "max_5xx_rate", "max_p99_latency_ms"):
            value = getattr(wanted, field)
            if value is not None:
                changes[field] = value
        if changes:
            sections["rollout"] = rollout.model_copy(update=changes)
        return model.model_copy(update=sections) if sections else model

    @model_validator(mode="after")
    def _retention_is_one_cloudwatch_accepts(self) -> StageSettings:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, sorted(LOG_RETENTION_DAYS)))
            raise ValueError(f"log_retention_days {self.log_retention_days} is not one of {allowed}")
        return self

    @property
    def retains_data(self) -> bool:
        return self.removal == "retain"

    @property
    def network(self) -> NetworkSettings:
        return NetworkSettings(isolation=self.network_isolation, vpc=self.vpc)


class StagesError(ValueError):
    """A stages file that cannot be used; the message names the file, the stage and the field."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stages file {path}:\n{listed}")


def parse_stages(raw: Any, source: Path | str) -> dict[str, StageSettings]:
    """Every stage section of a stages document, validated: each section alone, then `promote_from` against
    the others (a stage it names must be another one of the file's)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise StagesError(
            source, [f"(top level): expected a mapping of stage names, got {type(raw).__name__}"]
        )
    stages: dict[str, StageSettings] = {}
    problems: list[str] = []
    for stage, section in raw.items():
        try:
            stages[str(stage)] = StageSettings.model_validate(section or {})
        except ValidationError as exc:
            problems += [_describe(str(stage), error) for error in exc.errors()]
    for stage, settings in stages.items():
        origin = settings.promote_from
        if origin == stage:
            problems.append(f"{stage}.promote_from: a stage cannot promote from itself")
        elif origin is not None and origin not in raw:
            known = ", ".join(map(str, raw)) or "none"
            problems.append(f"{stage}.promote_from: no stage named '{origin}' in this file (stages: {known})")
    if problems:
        raise StagesError(source, problems)
    return stages


def _describe(stage: str, error: Any) -> str:
    field = ".".join(str(part) for part in (stage, *error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    return f"{field}: {message}"


def stages_file() -> Path:
    """The stages file in use: $HEADRACE_STAGES_FILE, else the repository's stages.yaml (as the CDK app's
    own choice, stacks/settings.py, when no `stages_file` context is given)."""
    named = os.environ.get(STAGES_FILE_ENV)
    return Path(named) if named else STAGES_FILE


def load_stages(path: Path | None = None) -> dict[str, StageSettings]:
    """Every stage the stages file names (default: stages_file(); none when the repository's is missing)."""
    # Imported here: the Lambda runtime, which ships this package, has no YAML parser.
    import yaml

    path = path or stages_file()
    if not path.is_file():
        if path != STAGES_FILE:
            raise StagesError(path, ["(file): not found"])
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise StagesError(path, [f"(file): not valid YAML: {exc}"]) from None
    return parse_stages(raw, path)


def load_stage(stage: str, path: Path | None = None) -> StageSettings:
    """`stage`'s settings from the stages file (default: stages_file()); a stage the file does not name, or
    a missing repository file, gets the defaults."""
    return load_stages(path).get(stage, StageSettings())


def promotion_targets(stage: str, path: Path | None = None) -> list[tuple[str, StageSettings]]:
    """The stages that take `stage`'s Approved versions (`promote_from: <stage>`), by name: what the source
    stage's resource policies must let read when their accounts differ."""
    return sorted(
        ((name, settings) for name, settings in load_stages(path).items() if settings.promote_from == stage),
        key=lambda pair: pair[0],
    )


def promoting_accounts(stage: str, path: Path | None = None) -> list[str]:
    """The accounts of the stages that promote from `stage` and are deployed in another account than it:
    what its stacks grant read of its versions (stacks/promotion.py). A target without an account is the
    deploying credentials' own and needs no grant."""
    own = load_stages(path).get(stage, StageSettings()).account
    return sorted(
        {s.account for _, s in promotion_targets(stage, path) if s.account is not None and s.account != own}
    )
