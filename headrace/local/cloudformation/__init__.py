"""Provision the local plane from the cloud assembly that `cdk synth` produces: no second description.

moto's CloudFormation creates the stacks (S3, KMS, DynamoDB, IAM, Lambda, Step Functions, Events) once the
CDK bootstrap parameter and the assets bucket exist (provisioner.py). What it cannot do is done here:
- assembly.py: `cdk synth` run offline, and its manifest read into stacks in dependency order.
- public_parameters.py: the AWS-owned SSM parameters a template reads (managed layer ARNs) published, with
  stand-in layers.
- intrinsics.py: Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::ImportValue and pseudo parameters
  resolved against a created stack, for the resources created after it.
- api_requests.py, deferred.py: the resources moto's CloudFormation skips or fakes (bucket notifications,
  alarms, schedules and schedule groups, bucket versioning) created through their own APIs after the stack.
"""

from __future__ import annotations


class ProvisionError(RuntimeError):
    """The assembly cannot be synthesized or provisioned locally; the message says which resource and why."""
