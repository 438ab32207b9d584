"""Provision the local plane from the cloud assembly that `cdk synth` produces: no second description.

moto's CloudFormation creates the stacks (S3, KMS, DynamoDB, IAM, Lambda, Step Functions, Events) once the
CDK bootstrap parameter and the assets bucket exist. What it cannot do is done here, from the template:
- `Custom::S3BucketNotifications` would wait forever for a handler that runs in Docker: it is taken out of
  the template and its NotificationConfiguration applied with the S3 API after the stack is created.
- AWS-owned SSM parameters that the template reads (bootstrap version, managed layer ARNs) are published.
- `AWS::CloudWatch::Alarm`, which moto's CloudFormation reports created without creating it, is created with
  PutMetricAlarm after the stack, its intrinsics resolved against the stack (alarms.py evaluates it).
- `AWS::Scheduler::Schedule` and `AWS::Scheduler::ScheduleGroup`, skipped the same way, are created with
  the Scheduler API after the stack (schedules.py fires them).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError
from moto.cloudformation.parsing import resource_class_from_type

from headrace.local.aws import Clients
from headrace.local.training import ImageRegistry

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
# Any version >= 6 satisfies the CheckBootstrapVersion rule of CDK 2 templates.
BOOTSTRAP_VERSION = "30"
DEFERRED_RESOURCE_TYPES = {"Custom::S3BucketNotifications"}
# Left in the template (moto reports them created and creates nothing), then created through their own API.
CREATED_AFTER_STACK_TYPES = {
    "AWS::CloudWatch::Alarm",
    "AWS::Scheduler::Schedule",
    "AWS::Scheduler::ScheduleGroup",
}
# Public SSM parameters naming AWS-managed layers (headrace/layers.py); locally, stand-in layers.
MANAGED_LAYER_PARAMETER_PREFIXES = ("/aws/service/powertools/", "/aws/service/aws-sdk-pandas/")
STACK_TIMEOUT_S = 120


class ProvisionError(RuntimeError):
    pass


@dataclass
class StackArtifact:
    name: str
    template_file: Path
    asset_manifest: Path | None
    dependencies: list[str] = field(default_factory=list)


def synthesize(outdir: Path, stage: str, models_dir: Path | None = None) -> Path:
    """Run the real CDK app (`app.py`) offline into `outdir`; a bad model config fails here, by name."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"stage": stage}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    if models_dir is not None:
        env["HEADRACE_MODELS_DIR"] = str(models_dir)
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py")], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ProvisionError(f"cdk synth failed:\n{done.stderr.strip() or done.stdout.strip()}")
    return outdir


def read_assembly(outdir: Path) -> list[StackArtifact]:
    """The assembly's stacks in dependency order."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    stacks: dict[str, StackArtifact] = {}
    for name, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        asset_manifests = [
            outdir / artifacts[dep]["properties"]["file"]
            for dep in artifact.get("dependencies", [])
            if artifacts.get(dep, {}).get("type") == "cdk:asset-manifest"
        ]
        stacks[name] = StackArtifact(
            name=artifact["properties"].get("stackName", name),
            template_file=outdir / artifact["properties"]["templateFile"],
            asset_manifest=asset_manifests[0] if asset_manifests else None,
            dependencies=[d for d in artifact.get("dependencies", []) if d in artifacts and d != name],
        )
    ordered: list[StackArtifact] = []
    while len(ordered) < len(stacks):
        ready = [
            s
            for key, s in stacks.items()
            if s not in ordered
            and all(stacks[d] in ordered for d in s.dependencies if d in stacks)
            and key not in {o.name for o in ordered}
        ]
        if not ready:
            raise ProvisionError("the assembly's stacks depend on each other in a cycle")
        ordered.extend(ready)
    return ordered


def _zip_directory(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


def _substitute(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


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
        self._aws.publish_aws_parameter(BOOTSTRAP_VERSION_PARAMETER, BOOTSTRAP_VERSION)
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
            body = (
                _zip_directory(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
            )
            for destination in asset["destinations"].values():
                bucket = _substitute(destination["bucketName"], self._aws.account, self._aws.region)
                self._aws.s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
        # Container images are not built locally: their staged build directory is what runs (training.py).
        for image in manifest.get("dockerImages", {}).values():
            directory = manifest_file.parent / image["source"]["directory"]
            for destination in image["destinations"].values():
                self._images.add(destination["imageTag"], directory)

    def _resolve_layer_references(self, value: Any) -> Any:
        """SSM dynamic references to managed layers (`{{resolve:ssm:<name with ${AWS::Region}>}}`, built by an
        Fn::Join) replaced by the stand-in layer's ARN: moto 5.2.5 resolves them when it creates a function
        but hands them unresolved to an update, which then fails (a 500 on UpdateStack)."""
        if isinstance(value, list):
            return [self._resolve_layer_references(v) for v in value]
        if not isinstance(value, dict):
            return value
        joined = value.get("Fn::Join")
        if isinstance(joined, list) and len(joined) == 2 and joined[0] == "" and isinstance(joined[1], list):
            parts = joined[1]
            if len(parts) == 3 and parts[0] == "{{resolve:ssm:" and parts[2] == "}}":
                name = parts[1].get("Fn::Sub", parts[1]) if isinstance(parts[1], dict) else parts[1]
                name = str(name).replace("${AWS::Region}", self._aws.region)
                if name.startswith(MANAGED_LAYER_PARAMETER_PREFIXES):
                    arn = self._local_layer(name)
                    self._aws.publish_aws_parameter(name, arn)
                    return arn
        return {k: self._resolve_layer_references(v) for k, v in value.items()}

    def _publish_parameters(self, template: dict[str, Any]) -> None:
        """Publish the AWS-owned SSM parameters a template's parameters default to."""
        for parameter in template.get("Parameters", {}).values():
            if not str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                continue
            name = parameter.get("Default", "")
            if name == BOOTSTRAP_VERSION_PARAMETER:
                continue
            if name.startswith(MANAGED_LAYER_PARAMETER_PREFIXES):
                self._aws.publish_aws_parameter(name, self._local_layer(name))
            else:
                raise ProvisionError(
                    f"the template reads SSM parameter {name}, which the local plane cannot provide"
                )

    def _local_layer(self, parameter_name: str) -> str:
        """A stand-in for an AWS-managed layer: its libraries are already importable in this process."""
        layer_name = "local-" + hashlib.sha256(parameter_name.encode()).hexdigest()[:12]
        existing = self._aws.lambda_.list_layer_versions(LayerName=layer_name).get("LayerVersions", [])
        if existing:
            return str(existing[0]["LayerVersionArn"])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("python/README.txt", f"local stand-in for {parameter_name}\n")
        published = self._aws.lambda_.publish_layer_version(
            LayerName=layer_name, Description=parameter_name, Content={"ZipFile": buffer.getvalue()}
        )
        return str(published["LayerVersionArn"])

    def _deploy_stack(self, stack: StackArtifact) -> dict[str, str]:
        template = json.loads(stack.template_file.read_text())
        self._publish_parameters(template)
        template["Resources"] = self._resolve_layer_references(template.get("Resources", {}))
        deferred = {
            logical_id: resource
            for logical_id, resource in template.get("Resources", {}).items()
            if resource.get("Type") in DEFERRED_RESOURCE_TYPES
        }
        for logical_id in deferred:
            del template["Resources"][logical_id]
        _work_around_moto(template)
        unmodelled = sorted(
            {
                r["Type"]
                for r in template.get("Resources", {}).values()
                if not resource_class_from_type(r["Type"]) and r["Type"] not in CREATED_AFTER_STACK_TYPES
            }
        )
        if unmodelled:
            # Policies and the like that moto does not model would not be enforced locally anyway.
            self._progress(f"{stack.name}: not modelled locally: {', '.join(unmodelled)}")
        body = json.dumps(template)
        digest = hashlib.sha256(body.encode()).hexdigest()
        cfn = self._aws.cloudformation
        existing = self._describe(stack.name)
        if existing and any(
            t["Key"] == "headrace:template-sha256" and t["Value"] == digest for t in existing.get("Tags", [])
        ):
            self._progress(f"{stack.name}: unchanged")
            changed = False
        else:
            changed = True
            tags = [{"Key": "headrace:template-sha256", "Value": digest}]
            capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
            if existing:
                self._progress(f"{stack.name}: updating")
                cfn.update_stack(
                    StackName=stack.name, TemplateBody=body, Capabilities=capabilities, Tags=tags
                )
            else:
                self._progress(f"{stack.name}: creating")
                cfn.create_stack(
                    StackName=stack.name, TemplateBody=body, Capabilities=capabilities, Tags=tags
                )
            self._wait(stack.name)
        resources = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cfn.describe_stack_resources(StackName=stack.name)["StackResources"]
            if "LogicalResourceId" in r
        }
        for logical_id, resource in deferred.items():
            self._apply_deferred(logical_id, resource, resources)
        self._complete_buckets(template, resources)
        self._create_alarms(stack.name, template, resources, replace=changed)
        self._create_schedules(stack.name, template, resources, replace=changed)
        described = self._describe(stack.name) or {}
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

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

    def _complete_buckets(self, template: dict[str, Any], physical: dict[str, str]) -> None:
        """Bucket properties moto's CloudFormation ignores (5.2.5): versioning and the public access block."""
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::S3::Bucket" or not physical.get(logical_id):
                continue
            properties = resource.get("Properties", {})
            bucket = physical[logical_id]
            status = properties.get("VersioningConfiguration", {}).get("Status")
            if status:
                self._aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
            block = properties.get("PublicAccessBlockConfiguration")
            if block:
                self._aws.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)

    def _apply_deferred(self, logical_id: str, resource: dict[str, Any], physical: dict[str, str]) -> None:
        properties = resource.get("Properties", {})
        bucket_ref = properties.get("BucketName", {})
        bucket = physical.get(bucket_ref.get("Ref", "")) if isinstance(bucket_ref, dict) else bucket_ref
        if not bucket:
            raise ProvisionError(f"{logical_id}: cannot resolve its BucketName {bucket_ref!r}")
        configuration = properties.get("NotificationConfiguration", {})
        unsupported = set(configuration) - {"EventBridgeConfiguration"}
        if unsupported:
            raise ProvisionError(
                f"{logical_id}: notification kinds {sorted(unsupported)} are not supported locally"
            )
        self._aws.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=configuration
        )

    def _create_alarms(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str], replace: bool
    ) -> None:
        """Create the template's alarms; those of an unchanged stack only where missing (a restored plane
        keeps its alarms' states)."""
        if not any(r.get("Type") == ALARM_TYPE for r in template.get("Resources", {}).values()):
            return
        account, region = self._aws.account, self._aws.region
        references = StackReferences(
            physical_ids=physical,
            pseudo_parameters=pseudo_parameters(account, region, stack_name),
            exports=self._exports(),
            attribute=_stack_attribute(account, region, stack_name),
        )
        cloudwatch = self._aws.client("cloudwatch")
        requests = alarm_requests(template, stack_name, references)
        if not replace:
            names = [r["AlarmName"] for r in requests]
            existing = {a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
            requests = [r for r in requests if r["AlarmName"] not in existing]
        for request in requests:
            cloudwatch.put_metric_alarm(**request)
        if requests:
            self._progress(
                f"{stack_name}: alarms created locally: {', '.join(r['AlarmName'] for r in requests)}"
            )

    def _create_schedules(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str], replace: bool
    ) -> None:
        """Create the template's schedule groups and schedules; update a changed stack's existing schedules,
        leave an unchanged stack's alone (a restored plane keeps them as they were)."""
        resources = template.get("Resources", {}).values()
        if not any(r.get("Type") in (SCHEDULE_TYPE, SCHEDULE_GROUP_TYPE) for r in resources):
            return
        groups, references = self._schedule_references(stack_name, template, physical)
        scheduler = self._aws.client("scheduler")
        existing_groups = {g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]}
        done: dict[str, list[str]] = {"created": [], "updated": []}
        try:
            for group in groups.values():
                if group["Name"] not in existing_groups:
                    scheduler.create_schedule_group(**group)
            for request in schedule_requests(template, stack_name, references):
                name, group_name = request["Name"], request.get("GroupName", "default")
                try:
                    scheduler.get_schedule(Name=name, GroupName=group_name)
                except scheduler.exceptions.ResourceNotFoundException:
                    scheduler.create_schedule(**request)
                    done["created"].append(name)
                    continue
                if replace:
                    scheduler.update_schedule(**request)
                    done["updated"].append(name)
        except (ClientError, ParamValidationError) as error:
            raise ProvisionError(f"{stack_name}: creating its schedules locally failed: {error}") from error
        summary = "; ".join(f"{what} {', '.join(names)}" for what, names in done.items() if names)
        if summary:
            self._progress(f"{stack_name}: schedules {summary} locally")

    def _schedule_references(
        self, stack_name: str, template: dict[str, Any], physical: dict[str, str]
    ) -> tuple[dict[str, dict[str, Any]], StackReferences]:
        """The template's schedule group requests, and the references its schedules resolve against: moto's
        CloudFormation lists no skipped resource, so a group's Ref (its name) and Arn are supplied here."""
        account, region = self._aws.account, self._aws.region
        stack_attribute = _stack_attribute(account, region, stack_name)
        base = StackReferences(
            physical_ids=physical,
            pseudo_parameters=pseudo_parameters(account, region, stack_name),
            exports=self._exports(),
            attribute=stack_attribute,
        )
        groups = schedule_group_requests(template, stack_name, base)
        names = {logical_id: str(group["Name"]) for logical_id, group in groups.items()}

        def attribute(logical_id: str, name: str) -> Any:
            if logical_id in names and name == "Arn":
                return f"arn:aws:scheduler:{region}:{account}:schedule-group/{names[logical_id]}"
            return stack_attribute(logical_id, name)

        references = StackReferences({**physical, **names}, base.pseudo_parameters, base.exports, attribute)
        return groups, references

    def _exports(self) -> dict[str, str]:
        exports: dict[str, str] = {}
        kwargs: dict[str, str] = {}
        while True:
            page = self._aws.cloudformation.list_exports(**kwargs)
            exports.update({e["Name"]: e["Value"] for e in page.get("Exports", [])})
            if not page.get("NextToken"):
                return exports
            kwargs["NextToken"] = page["NextToken"]


# --- AWS::CloudWatch::Alarm, created after the stack --------------------------------------------------------

ALARM_TYPE = "AWS::CloudWatch::Alarm"
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def pseudo_parameters(account: str, region: str, stack_name: str) -> dict[str, str]:
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
    }


def _no_attribute(logical_id: str, name: str) -> Any:
    return None


def _stack_attribute(account: str, region: str, stack_name: str) -> Callable[[str, str], Any]:
    """Fn::GetAtt as moto's CloudFormation answers it for the stack's resources (in this process)."""

    def attribute(logical_id: str, name: str) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        try:
            resource = cloudformation_backends[account][region].get_stack(stack_name).resource_map[logical_id]
            return resource.get_cfn_attribute(name) if resource is not None else None
        except Exception:  # not in the stack, or an attribute moto does not model
            return None

    return attribute


@dataclass(frozen=True)
class StackReferences:
    """What a template's intrinsic functions resolve to once its stack exists: the resources' physical ids
    (Ref), their attributes (Fn::GetAtt), pseudo parameters and other stacks' exports."""

    physical_ids: Mapping[str, str]
    pseudo_parameters: Mapping[str, str]
    exports: Mapping[str, str] = field(default_factory=dict)
    attribute: Callable[[str, str], Any] = _no_attribute

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            handlers: dict[str, Callable[[Any], Any]] = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Join": lambda a: str(a[0]).join(str(part) for part in self.resolve(a[1])),
                "Fn::Sub": self._sub,
                "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
                "Fn::ImportValue": self._import,
            }
            if function in handlers:
                return handlers[function](argument)
            if function.startswith("Fn::"):
                raise ProvisionError(f"{function} is not resolved locally")
        return {key: self.resolve(v) for key, v in value.items()}

    def _ref(self, name: str) -> str:
        value = self.pseudo_parameters.get(name) or self.physical_ids.get(name)
        if not value:
            raise ProvisionError(f"cannot resolve Ref {name}")
        return value

    def _get_att(self, argument: list[str] | str) -> Any:
        logical_id, name = argument.split(".", 1) if isinstance(argument, str) else argument
        value = self.attribute(logical_id, self.resolve(name))
        if value is None:
            raise ProvisionError(f"cannot resolve Fn::GetAtt {logical_id}.{name}")
        return value

    def _sub(self, argument: list[Any] | str) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {key: str(self.resolve(v)) for key, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} stands for the text ${Literal}
            if name in resolved:
                return resolved[name]
            if "." in name and not name.startswith("AWS::"):
                return str(self._get_att(name))
            return self._ref(name)

        return _SUB_VARIABLE.sub(substitute, str(template))

    def _import(self, name: Any) -> str:
        export = str(self.resolve(name))
        if export not in self.exports:
            raise ProvisionError(f"no stack exports {export}")
        return self.exports[export]


def _boolean(value: Any) -> bool:
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def _metric_data_query(query: dict[str, Any]) -> dict[str, Any]:
    query = dict(query)
    if "Period" in query:
        query["Period"] = int(query["Period"])
    if "ReturnData" in query:
        query["ReturnData"] = _boolean(query["ReturnData"])
    if "MetricStat" in query:
        query["MetricStat"] = {**query["MetricStat"], "Period": int(query["MetricStat"]["Period"])}
    return query


def _put_metric_alarm_request(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's alarm properties are PutMetricAlarm's parameters; only their types are looser."""
    request = dict(properties)
    for key in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
        if key in request:
            request[key] = int(request[key])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    if "ActionsEnabled" in request:
        request["ActionsEnabled"] = _boolean(request["ActionsEnabled"])
    if "Metrics" in request:
        request["Metrics"] = [_metric_data_query(q) for q in request["Metrics"]]
    return request


def generated_alarm_name(stack_name: str, logical_id: str) -> str:
    """CloudFormation names an unnamed alarm <stack>-<logical id>-<suffix>; here the suffix is stable, so that
    an update replaces the alarm instead of adding one."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}-{suffix}"


def alarm_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the template's AWS::CloudWatch::Alarm resources, intrinsics resolved."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != ALARM_TYPE:
            continue
        try:
            request = _put_metric_alarm_request(references.resolve(resource.get("Properties", {})))
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: alarm {logical_id}: {error}") from error
        request.setdefault("AlarmName", generated_alarm_name(stack_name, logical_id))
        requests.append(request)
    return requests


# --- AWS::Scheduler::Schedule and ScheduleGroup, created after the stack ------------------------------------

SCHEDULE_TYPE = "AWS::Scheduler::Schedule"
SCHEDULE_GROUP_TYPE = "AWS::Scheduler::ScheduleGroup"
# Schedule and group names: 1 to 64 characters (EventBridge Scheduler API reference, CreateSchedule).
SCHEDULE_NAME_LIMIT = 64
# CreateSchedule's members that are integers, which a template may write as strings.
_SCHEDULE_INTEGERS = {
    ("FlexibleTimeWindow", "MaximumWindowInMinutes"),
    ("Target", "RetryPolicy", "MaximumEventAgeInSeconds"),
    ("Target", "RetryPolicy", "MaximumRetryAttempts"),
}


def generated_schedule_name(stack_name: str, logical_id: str) -> str:
    """CloudFormation names an unnamed schedule (or group) <stack>-<logical id>-<suffix> within 64 characters;
    here the suffix is stable, so that an update finds the schedule it created."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}"[: SCHEDULE_NAME_LIMIT - len(suffix) - 1] + f"-{suffix}"


def schedule_group_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> dict[str, dict[str, Any]]:
    """CreateScheduleGroup requests for the template's schedule groups, by logical id."""
    requests = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != SCHEDULE_GROUP_TYPE:
            continue
        try:
            properties = references.resolve(resource.get("Properties", {}))
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: schedule group {logical_id}: {error}") from error
        request = {"Name": str(properties.get("Name") or generated_schedule_name(stack_name, logical_id))}
        if properties.get("Tags"):
            request["Tags"] = properties["Tags"]
        requests[logical_id] = request
    return requests


def _create_schedule_request(properties: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's schedule properties are CreateSchedule's parameters; only their types are looser."""
    request = {key: value for key, value in properties.items() if value is not None}
    # Scheduler's default; said out loud because moto's UpdateSchedule sets a missing State to None.
    request.setdefault("State", "ENABLED")
    for path in _SCHEDULE_INTEGERS:
        *parents, key = path
        container: Any = request
        for parent in parents:
            container = container.get(parent) if isinstance(container, dict) else None
        if isinstance(container, dict) and key in container:
            container[key] = int(container[key])
    target = request.get("Target")
    if isinstance(target, dict) and isinstance(target.get("Input"), dict | list):
        target["Input"] = json.dumps(target["Input"])  # a template may give the JSON input as an object
    return request


def schedule_requests(
    template: dict[str, Any], stack_name: str, references: StackReferences
) -> list[dict[str, Any]]:
    """CreateSchedule requests for the template's AWS::Scheduler::Schedule resources, intrinsics resolved."""
    requests = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != SCHEDULE_TYPE:
            continue
        try:
            request = _create_schedule_request(references.resolve(resource.get("Properties", {})))
            missing = {"ScheduleExpression", "FlexibleTimeWindow", "Target"} - set(request)
            if missing:
                raise ProvisionError(f"missing {', '.join(sorted(missing))}")
        except (ProvisionError, KeyError, IndexError, TypeError, ValueError) as error:
            raise ProvisionError(f"{stack_name}: schedule {logical_id}: {error}") from error
        request.setdefault("Name", generated_schedule_name(stack_name, logical_id))
        requests.append(request)
    return requests
