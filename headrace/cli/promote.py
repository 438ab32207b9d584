"""`headrace promote`: one Approved version of a stage registered in another stage (dev -> prod)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from botocore.exceptions import ClientError

from headrace.deployment import stack_outputs
from headrace.ledger import DynamoLedger
from headrace.naming import Outputs
from headrace.promotion import (
    NotApproved,
    PromotionError,
    PromotionRequest,
    ServingImageMismatch,
    SourceStage,
    TargetStage,
    parse_version,
    promote,
)
from headrace.stages import StagesError, load_stage

from .output import console, fail, print_json
from .target import resolve

app = typer.Typer()


@app.command("promote")
def promote_command(
    model: Annotated[str, typer.Argument(help="Model name (a file in models/).")],
    version: Annotated[str, typer.Argument(help="The source stage's registry version: 3 or v3.")],
    from_stage: Annotated[str, typer.Option("--from", help="The stage the version is Approved in.")] = "dev",
    to_stage: Annotated[str, typer.Option("--to", help="The stage to register it in.")] = "prod",
    reason: Annotated[
        str, typer.Option(help="Why: kept in the target version's lineage.")
    ] = "promoted with the headrace CLI",
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Register an Approved version of one stage in another: artifacts copied into the target's bucket under
    its key, lineage back to the source, the target's approval policy applied (prod: manual, then
    `headrace approve MODEL N --stage prod`). Promoting the same version again changes nothing.

    Example: headrace promote churn v3 --from dev --to prod --reason "two weeks in dev, slices fine"
    """
    if from_stage == to_stage:
        fail(f"--from and --to both name {from_stage}: a version is promoted from one stage to another")
    try:
        number = parse_version(version)
        source_settings, target_settings = load_stage(from_stage), load_stage(to_stage)
    except (PromotionError, StagesError) as exc:
        fail(str(exc))
    target = resolve(to_stage)
    # As on AWS, the promoter is an identity of the target's account: it reads the source stage through the
    # grants the source's stacks give the target's account (stacks/promotion.py), and writes the target.
    source = resolve(from_stage).acting_as(target)
    config = target.model(model)
    deployment = target.deployment()
    key_arn = stack_outputs(target.client("cloudformation"), target.names.data_stack)[Outputs.DATA_KEY_ARN]
    sagemaker = target.client("sagemaker")
    try:
        promoted = promote(
            PromotionRequest(
                model=config,
                version=number,
                reason=reason,
                promoted_by=str(target.client("sts").get_caller_identity()["Arn"]),
            ),
            SourceStage(
                names=source.names,
                sagemaker=source.client("sagemaker"),
                account=source_settings.account,
                region=source_settings.region
                or (sagemaker.meta.region_name if source_settings.account else None),
            ),
            TargetStage(
                names=target.names,
                sagemaker=sagemaker,
                s3=target.client("s3"),
                bucket=deployment.data_bucket,
                key_arn=key_arn,
                settings=target_settings,
                serving_image=deployment.model(config.name).serving_image,
            ),
            DynamoLedger(target.client("dynamodb"), deployment.ledger_table),
            lambda: datetime.now(UTC),
        )
    except NotApproved as exc:
        fail(
            str(exc),
            f"approve it in {from_stage} first: headrace approve {config.name} {number} --stage {from_stage}",
        )
    except ServingImageMismatch as exc:
        fail(
            str(exc),
            f"from the commit {from_stage} runs: `make deploy STAGE={to_stage}`, then promote again",
        )
    except PromotionError as exc:
        fail(str(exc), f"list the versions with `HEADRACE_STAGE={from_stage} headrace runs {config.name}`")
    except ClientError as exc:
        # A refusal of either stage (AccessDenied across accounts, a missing object): AWS's words, no trace.
        error = exc.response.get("Error", {})
        fail(
            f"{exc.operation_name} was refused: {error.get('Code', '?')}: {error.get('Message', '')}",
            "the promoting identity needs read on the source stage and write on the target "
            "(README: From dev to prod)",
        )
    if json:
        print_json(asdict(promoted))
        return
    where = f"{promoted.target_stage} v{promoted.target_version} ({promoted.approval_status})"
    if not promoted.created:
        console.print(f"already promoted: {where}", highlight=False)
        return
    console.print(
        f"promoted {promoted.model} {promoted.source_stage} v{promoted.source_version} → {where}",
        highlight=False,
    )
    console.print(f"lineage: {promoted.lineage_uri}", highlight=False, soft_wrap=True)
    if promoted.approval_status != "Approved":
        approve = f"headrace approve {promoted.model} {promoted.target_version}"
        console.print(f"next: {approve} --stage {promoted.target_stage}", highlight=False)
