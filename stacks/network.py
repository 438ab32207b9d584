"""What a SageMaker execution role needs to run a training job or an endpoint in the stage's VPC: SageMaker
creates network interfaces in the stage's subnets as the role
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html, CreateTrainingJob and CreateModel)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from headrace.stages import NetworkSettings
from stacks import nag

# EC2's Describe calls have no resource-level permissions.
DESCRIBE_ACTIONS = [
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
]
INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
]


def grant_vpc_access(role: iam.Role, network: NetworkSettings) -> None:
    """Interfaces in the stage's subnets with its security groups only; the interfaces' own ids SageMaker
    picks at run time."""
    assert network.vpc is not None, "only a stage with a VPC needs this"
    stack = Stack.of(role)
    interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    subnets = [
        stack.format_arn(service="ec2", resource="subnet", resource_name=s) for s in network.vpc.subnet_ids
    ]
    groups = [
        stack.format_arn(service="ec2", resource="security-group", resource_name=g)
        for g in network.vpc.security_group_ids
    ]
    role.add_to_policy(iam.PolicyStatement(actions=DESCRIBE_ACTIONS, resources=["*"]))
    role.add_to_policy(
        iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"], resources=[interfaces, *subnets, *groups])
    )
    role.add_to_policy(iam.PolicyStatement(actions=INTERFACE_ACTIONS, resources=[interfaces]))
    nag.accept_unscoped(role, nag.EC2_DESCRIBE)
    nag.accept_wildcards(role, nag.NETWORK_INTERFACES, resources=[nag.flat(role, interfaces)])
