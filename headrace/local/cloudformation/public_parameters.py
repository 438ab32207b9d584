"""The SSM parameters a CDK template reads that the account would already hold on AWS: the CDK bootstrap
version, and the public `/aws/service/...` parameters naming AWS-managed layers (headrace/layers.py),
which locally name stand-in layers (their libraries are already importable in the plane's process).

Only names of the forms the publishers document are published, matched here independently of
headrace/layers.py: a template that reads any other name fails to provision locally, as it would on AWS."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from typing import Any

from headrace.local.aws import Clients
from headrace.local.cloudformation import ProvisionError
from headrace.local.seams.cloudformation import publish_aws_parameter

BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
# Any version >= 6 satisfies the CheckBootstrapVersion rule of CDK 2 templates.
BOOTSTRAP_VERSION = "30"
# Public SSM parameters naming AWS-managed layers (headrace/layers.py); locally, stand-in layers.
MANAGED_LAYER_PARAMETER_PREFIXES = ("/aws/service/powertools/", "/aws/service/aws-sdk-pandas/")
# The names AWS publishes, as their publishers document them (no region inside either).
DOCUMENTED_LAYER_PARAMETERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        # https://docs.powertools.aws.dev/lambda/python/latest/#lambda-layer
        re.compile(r"/aws/service/powertools/python/(x86_64|arm64)/python3\.\d+/\d+\.\d+\.\d+"),
        "/aws/service/powertools/python/<arch>/<runtime>/<version>",
    ),
    (
        # https://aws-sdk-pandas.readthedocs.io/en/stable/install.html ("AWS Lambda Layer", "Managed Layer")
        re.compile(r"/aws/service/aws-sdk-pandas/\d+\.\d+\.\d+/py3\.\d+/(x86_64|arm64)/layer-arn"),
        "/aws/service/aws-sdk-pandas/<version>/py<python version>/<arch>/layer-arn",
    ),
)


def check_documented(name: str) -> None:
    """Refuse a managed-layer parameter name AWS does not publish, naming the documented forms."""
    if not any(pattern.fullmatch(name) for pattern, _ in DOCUMENTED_LAYER_PARAMETERS):
        forms = ", ".join(form for _, form in DOCUMENTED_LAYER_PARAMETERS)
        raise ProvisionError(
            f"the template reads SSM parameter {name}, which AWS does not publish (ParameterNotFound on "
            f"deploy); the managed layers' parameters are named {forms}"
        )


class PublicParameters:
    """Publishes the parameters a template reads, and the stand-in layers they name."""

    def __init__(self, clients: Clients) -> None:
        self._aws = clients

    def publish_bootstrap_version(self) -> None:
        self._publish(BOOTSTRAP_VERSION_PARAMETER, BOOTSTRAP_VERSION)

    def _publish(self, name: str, value: str) -> None:
        # Only possible inside the process that runs moto (the SSM API refuses /aws/ names).
        publish_aws_parameter(self._aws.account, self._aws.region, name, value)

    def resolve_layer_references(self, value: Any) -> Any:
        """SSM dynamic references to managed layers (`{{resolve:ssm:<name>}}`, built by an Fn::Join) replaced
        by the stand-in layer's ARN: moto 5.2.5 resolves them when it creates a function but hands them
        unresolved to an update, which then fails (a 500 on UpdateStack). Headrace's own templates read both
        layers through template parameters instead; a reference still has to name a documented parameter."""
        if isinstance(value, list):
            return [self.resolve_layer_references(v) for v in value]
        if not isinstance(value, dict):
            return value
        joined = value.get("Fn::Join")
        if isinstance(joined, list) and len(joined) == 2 and joined[0] == "" and isinstance(joined[1], list):
            parts = joined[1]
            if len(parts) == 3 and parts[0] == "{{resolve:ssm:" and parts[2] == "}}":
                name = parts[1].get("Fn::Sub", parts[1]) if isinstance(parts[1], dict) else parts[1]
                name = str(name).replace("${AWS::Region}", self._aws.region)
                if name.startswith(MANAGED_LAYER_PARAMETER_PREFIXES):
                    check_documented(name)
                    arn = self._local_layer(name)
                    self._publish(name, arn)
                    return arn
        return {k: self.resolve_layer_references(v) for k, v in value.items()}

    def publish_template_parameters(self, template: dict[str, Any]) -> None:
        """Publish the AWS-owned SSM parameters a template's parameters default to."""
        for parameter in template.get("Parameters", {}).values():
            if not str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                continue
            name = parameter.get("Default", "")
            if name == BOOTSTRAP_VERSION_PARAMETER:
                continue
            if name.startswith(MANAGED_LAYER_PARAMETER_PREFIXES):
                check_documented(name)
                self._publish(name, self._local_layer(name))
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
