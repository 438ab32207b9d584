"""The Provisioner: the assembly's stacks created (or updated) in the local plane through its AWS APIs,
moto's CloudFormation doing what it models and deferred.py the rest, stack by stack in dependency order."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from headrace.local.aws import Clients
from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.assembly import StackArtifact, read_assembly, zip_directory
from headrace.local.cloudformation.deferred import (
    CREATED_AFTER_STACK_TYPES,
    DeferredResources,
    take_out_deferred,
)
from headrace.local.cloudformation.intrinsics import substitute_pseudo_parameters
from headrace.local.cloudformation.public_parameters import BOOTSTRAP_QUALIFIER, PublicParameters
from headrace.local.sagemaker.containers import ImageRegistry
from headrace.local.seams.cloudformation import models_resource_type

STACK_TIMEOUT_S = 120
TEMPLATE_DIGEST_TAG = "headrace:template-sha256"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


def _work_around_moto(template: dict[str, Any]) -> None:
    """Rewrite the few template shapes moto 5.2.5 mis-reads (each one a moto bug, not a Headrace choice)."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::KMS::Key" and "Tags" in properties:
            # moto's KMS tagger expects the API's TagKey/TagValue, not CloudFormation's Key/Value (KeyError).
            properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties["Tags"]]


class Provisioner:
    """Creates (or updates) the assembly's stacks in the local plane, through its AWS APIs."""

    def __init__(
        self,
        clients: Clients,
        progress: Callable[[str], None] = lambda _: None,
        images: ImageRegistry | None = None,
    ) -> None:
        self._aws = clients
        self._progress = progress
        self._images = images or ImageRegistry()
        self._parameters = PublicParameters(clients)
        self._deferred = DeferredResources(clients, progress)

    def deploy(self, outdir: Path) -> dict[str, dict[str, str]]:
        """Deploy every stack; returns each stack's outputs."""
        self._bootstrap()
        outputs: dict[str, dict[str, str]] = {}
        for stack in read_assembly(outdir):
            if stack.asset_manifest:
                self._publish_assets(stack.asset_manifest)
            outputs[stack.name] = self._deploy_stack(stack)
        return outputs

    def _bootstrap(self) -> None:
        self._parameters.publish_bootstrap_version()
        bucket = self.assets_bucket
        try:
            self._aws.s3.head_bucket(Bucket=bucket)
        except ClientError:
            self._aws.s3.create_bucket(Bucket=bucket)

    @property
    def assets_bucket(self) -> str:
        return f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{self._aws.account}-{self._aws.region}"

    def _publish_assets(self, manifest_file: Path) -> None:
        manifest = json.loads(manifest_file.read_text())
        for asset in manifest.get("files", {}).values():
            source = manifest_file.parent / asset["source"]["path"]
            body = zip_directory(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
            for destination in asset["destinations"].values():
                bucket = substitute_pseudo_parameters(
                    destination["bucketName"], self._aws.account, self._aws.region
                )
                self._aws.s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
        # Container images are not built locally: their staged build directory is what runs (sagemaker/).
        # ECR keeps the images earlier deployments pushed until they are deleted or a lifecycle policy expires
        # them (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lp_creation.html): so a model restored
        # from --state-dir runs the image an earlier synth staged here (asset.<tag>) even after a code change.
        for earlier in manifest_file.parent.glob("asset.*/Dockerfile"):
            self._images.add(earlier.parent.name.removeprefix("asset."), earlier.parent)
        for image in manifest.get("dockerImages", {}).values():
            directory = manifest_file.parent / image["source"]["directory"]
            for destination in image["destinations"].values():
                self._images.add(destination["imageTag"], directory)

    def _deploy_stack(self, stack: StackArtifact) -> dict[str, str]:
        template = json.loads(stack.template_file.read_text())
        self._parameters.publish_template_parameters(template)
        template["Resources"] = self._parameters.resolve_layer_references(template.get("Resources", {}))
        deferred = take_out_deferred(template)
        _work_around_moto(template)
        unmodelled = sorted(
            {
                r["Type"]
                for r in template.get("Resources", {}).values()
                if not models_resource_type(r["Type"]) and r["Type"] not in CREATED_AFTER_STACK_TYPES
            }
        )
        if unmodelled:
            # Policies and the like that moto does not model would not be enforced locally anyway.
            self._progress(f"{stack.name}: not modelled locally: {', '.join(unmodelled)}")
        changed = self._create_or_update(stack.name, json.dumps(template))
        resources = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in self._aws.cloudformation.describe_stack_resources(StackName=stack.name)["StackResources"]
            if "LogicalResourceId" in r
        }
        self._deferred.apply(stack.name, template, deferred, resources, replace=changed)
        described = self._describe(stack.name) or {}
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    def _create_or_update(self, name: str, body: str) -> bool:
        """Create the stack, or update it if its template changed; whether anything changed."""
        digest = hashlib.sha256(body.encode()).hexdigest()
        cfn = self._aws.cloudformation
        existing = self._describe(name)
        if existing and any(
            t["Key"] == TEMPLATE_DIGEST_TAG and t["Value"] == digest for t in existing.get("Tags", [])
        ):
            self._progress(f"{name}: unchanged")
            return False
        tags = [{"Key": TEMPLATE_DIGEST_TAG, "Value": digest}]
        if existing:
            self._progress(f"{name}: updating")
            cfn.update_stack(StackName=name, TemplateBody=body, Capabilities=CAPABILITIES, Tags=tags)
        else:
            self._progress(f"{name}: creating")
            cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=CAPABILITIES, Tags=tags)
        self._wait(name)
        return True

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            stacks = self._aws.cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError:
            return None
        return stacks[0] if stacks else None

    def _wait(self, name: str) -> None:
        deadline = time.monotonic() + STACK_TIMEOUT_S
        while time.monotonic() < deadline:
            status = (self._describe(name) or {}).get("StackStatus", "")
            if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
                return
            if status.endswith("FAILED") or "ROLLBACK" in status:
                events = self._aws.cloudformation.describe_stack_events(StackName=name)["StackEvents"]
                reasons = [
                    f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                    for e in events
                    if "FAILED" in e.get("ResourceStatus", "")
                ]
                raise ProvisionError(f"stack {name} ended {status}: " + "; ".join(reasons[:5]))
            time.sleep(0.2)
        raise ProvisionError(f"stack {name} did not finish within {STACK_TIMEOUT_S}s")
