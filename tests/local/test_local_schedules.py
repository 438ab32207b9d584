"""EventBridge Scheduler on the local plane: the template's schedules created after the stack (moto's
CloudFormation skips them), fired on their expressions by ScheduleRunner against moto in-process, and the
control channel that `headrace local tick` posts to."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from moto.awslambda.models import LambdaFunction
from moto.scheduler.models import scheduler_backends
from typer.testing import CliRunner

from headrace.cli.main import app
from headrace.local.aws import LOCAL_ACCOUNT, LOCAL_REGION, Clients
from headrace.local.cloudformation import ProvisionError
from headrace.local.cloudformation.api_requests import schedule_requests
from headrace.local.cloudformation.deferred import DeferredResources
from headrace.local.cloudformation.intrinsics import StackReferences, pseudo_parameters
from headrace.local.cloudformation.provisioner import Provisioner
from headrace.local.control_server import ControlError, ControlServer, TickRequest, request_tick
from headrace.local.plane_info import RUNTIME_FILE, PlaneInfo
from headrace.local.scheduler.expressions import ScheduleExpressionError, parse_expression, parse_rate
from headrace.local.scheduler.runner import ScheduleNotFound, ScheduleRunner
from headrace.local.seams.scheduler import MotoSchedules
from headrace.local.seams.targets import MotoTargets
from headrace.local.targets import TargetDispatcher
from headrace.waiting import wait_for
from tests.support.moto import PLANE_CREDENTIALS, served_moto

STACK = "headrace-test-monitoring"
ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/scheduler"
# A Pass state that echoes its input: the execution's output is what the schedule sent.
ECHO = json.dumps({"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}})
# Saturday 23 November 2030, 10:15:30 UTC.
SATURDAY = datetime(2030, 11, 23, 10, 15, 30, tzinfo=UTC)


def schedule_resource(**properties: Any) -> dict[str, Any]:
    """An AWS::Scheduler::Schedule as aws_scheduler.CfnSchedule synthesizes it."""
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "ScheduleExpression": "rate(1 hour)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": {"Ref": "DriftMachine"},
                "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                "Input": {"Fn::Join": ["", ['{"model":"churn","stage":"', {"Ref": "AWS::Region"}, '"}']]},
            },
            **properties,
        },
    }


def monitoring_template(**schedule: Any) -> dict[str, Any]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return {
        "Resources": {
            "SchedulerRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
            "DriftMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "headrace-test-drift",
                    "DefinitionString": ECHO,
                    "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                },
            },
            "DriftSchedule": schedule_resource(
                Name={"Fn::Sub": "${AWS::StackName}-drift"},
                ScheduleExpression="rate(15 minutes)",
                **schedule,
            ),
        }
    }


def references(physical: dict[str, str]) -> StackReferences:
    return StackReferences(
        physical_ids=physical,
        pseudo_parameters=pseudo_parameters(LOCAL_ACCOUNT, LOCAL_REGION, STACK),
        attribute=lambda logical_id, name: f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{physical[logical_id]}",
    )


# --- expressions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(15 minutes)", timedelta(minutes=15)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(3 days)", timedelta(days=3)),
    ],
)
def test_rate_expressions_parse_to_their_period(expression: str, period: timedelta) -> None:
    assert parse_rate(expression) == period


@pytest.mark.parametrize(
    "expression", ["rate(0 minutes)", "rate(5 weeks)", "rate(five minutes)", "5 minutes"]
)
def test_malformed_rate_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError):
        parse_rate(expression)


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        ("cron(0 12 * * ? *)", None, SATURDAY, datetime(2030, 11, 23, 12, 0, tzinfo=UTC)),
        ("cron(*/15 * * * ? *)", None, SATURDAY, datetime(2030, 11, 23, 10, 30, tzinfo=UTC)),
        ("cron(0 9 ? * MON-FRI *)", None, SATURDAY, datetime(2030, 11, 25, 9, 0, tzinfo=UTC)),
        ("cron(30 2 1 JAN,JUL ? *)", None, SATURDAY, datetime(2031, 1, 1, 2, 30, tzinfo=UTC)),
        # 09:00 in Paris (UTC+1 in November) is 08:00 UTC, the next day.
        ("cron(0 9 * * ? *)", "Europe/Paris", SATURDAY, datetime(2030, 11, 24, 8, 0, tzinfo=UTC)),
        ("rate(15 minutes)", None, SATURDAY, SATURDAY + timedelta(minutes=15)),
        ("at(2030-12-01T06:00:00)", None, SATURDAY, datetime(2030, 12, 1, 6, 0, tzinfo=UTC)),
    ],
)
def test_an_expression_next_fires_at_its_next_matching_time(
    expression: str, timezone: str | None, after: datetime, expected: datetime
) -> None:
    assert parse_expression(expression, timezone).next_after(after) == expected


def test_a_one_time_schedule_in_the_past_never_fires_again() -> None:
    assert parse_expression("at(2030-01-01T00:00:00)").next_after(SATURDAY) is None


@pytest.mark.parametrize(
    "expression", ["cron(0 12 L * ? *)", "cron(0 12 ? * 6#3 *)", "cron(0 12 * * MON *)", "cron(0 12 * *)"]
)
def test_cron_expressions_the_runner_cannot_follow_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleExpressionError):
        parse_expression(expression)


def test_cron_is_evaluated_in_the_schedules_timezone() -> None:
    paris = parse_expression("cron(0 0 * * ? *)", "Europe/Paris").next_after(SATURDAY)
    assert paris is not None and paris.astimezone(ZoneInfo("Europe/Paris")).hour == 0


# --- schedules from the template ----------------------------------------------------------------------------


def test_schedule_requests_resolve_the_templates_intrinsics() -> None:
    template = monitoring_template(
        Target={
            "Arn": {"Ref": "DriftMachine"},
            "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
            "Input": {"Fn::Join": ["", ['{"model":"churn","region":"', {"Ref": "AWS::Region"}, '"}']]},
            "RetryPolicy": {"MaximumRetryAttempts": "3", "MaximumEventAgeInSeconds": "3600"},
        }
    )
    machine = f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:headrace-test-drift"
    [request] = schedule_requests(
        template, STACK, references({"DriftMachine": machine, "SchedulerRole": "scheduler"})
    )
    assert request == {
        "Name": f"{STACK}-drift",
        "ScheduleExpression": "rate(15 minutes)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": machine,
            "RoleArn": ROLE_ARN,
            "Input": '{"model":"churn","region":"us-east-1"}',
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
    }


def test_an_unnamed_schedule_gets_a_stable_name_within_scheduler_limits() -> None:
    template = {"Resources": {"A" * 80: schedule_resource()}}
    physical = {"DriftMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "SchedulerRole": "r"}
    first = schedule_requests(template, STACK, references(physical))[0]["Name"]
    again = schedule_requests(template, STACK, references(physical))[0]["Name"]
    assert first == again and len(first) <= 64 and first.startswith(f"{STACK}-AAA")


def test_a_schedule_without_a_target_fails_provisioning_naming_it() -> None:
    template = {"Resources": {"Broken": {"Type": "AWS::Scheduler::Schedule", "Properties": {"Name": "x"}}}}
    with pytest.raises(ProvisionError, match="schedule Broken: missing FlexibleTimeWindow"):
        schedule_requests(template, STACK, references({}))


# --- against moto in-process --------------------------------------------------------------------------------


@dataclass
class Plane:
    clients: Clients
    tmp: Path

    @cached_property
    def scheduler(self) -> Any:
        return self.clients.client("scheduler")

    @cached_property
    def sfn(self) -> Any:
        return self.clients.client("stepfunctions")

    def machine(self, name: str) -> str:
        return str(
            self.sfn.create_state_machine(name=name, definition=ECHO, roleArn=ROLE_ARN)["stateMachineArn"]
        )

    def schedule(self, name: str, target: str, **extra: Any) -> None:
        self.scheduler.create_schedule(
            Name=name,
            ScheduleExpression=extra.pop("ScheduleExpression", "rate(1 minute)"),
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": target, "RoleArn": ROLE_ARN, "Input": '{"at": "<aws.scheduler.scheduled-time>"}'},
            **extra,
        )

    def outputs(self, machine: str) -> list[Any]:
        """Each finished execution's output, oldest first."""

        def finished() -> list[dict[str, Any]] | None:
            executions = self.sfn.list_executions(stateMachineArn=machine)["executions"]
            described = [self.sfn.describe_execution(executionArn=e["executionArn"]) for e in executions]
            return None if any(d["status"] == "RUNNING" for d in described) else described

        described = wait_for(finished, "executions to finish", timeout_s=10, interval_s=0.02)
        return [json.loads(d["output"]) for d in sorted(described, key=lambda d: d["startDate"])]


def moto_runner(**options: Any) -> ScheduleRunner:
    """A runner over moto's schedules in this process, as the plane wires it."""
    return ScheduleRunner(MotoSchedules(), TargetDispatcher(MotoTargets()), **options)


@pytest.fixture(scope="module")
def moto_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    with served_moto() as endpoint, pytest.MonkeyPatch.context() as patch:
        # As seams.installed does: the stacks' state machines go to the backend that executes them.
        import moto.stepfunctions.models as stepfunctions_models
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        patch.setattr(stepfunctions_models, "stepfunctions_backends", stepfunctions_parser_backends)
        yield Plane(Clients(endpoint, credentials=PLANE_CREDENTIALS), tmp_path_factory.mktemp("plane"))
        config = f"{endpoint}/moto-api/config"
        requests.post(config, json={"stepfunctions": {"execute_state_machine": False}}, timeout=5)


@pytest.fixture
def plane(moto_plane: Plane) -> Plane:
    scheduler_backends[LOCAL_ACCOUNT][LOCAL_REGION].reset()  # each test sees only its own schedules
    return moto_plane


@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_a_stacks_schedules_are_created_and_fire_its_state_machine(plane: Plane) -> None:
    assembly = plane.tmp / "cdk.out"
    assembly.mkdir()
    (assembly / "Monitoring.template.json").write_text(json.dumps(monitoring_template()))
    manifest = {
        "artifacts": {
            "Monitoring": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "Monitoring.template.json", "stackName": STACK},
            }
        }
    }
    (assembly / "manifest.json").write_text(json.dumps(manifest))
    progress: list[str] = []

    Provisioner(plane.clients, progress.append).deploy(assembly)

    listed = plane.scheduler.list_schedules()["Schedules"]
    assert [(s["Name"], s["State"]) for s in listed] == [(f"{STACK}-drift", "ENABLED")]
    assert f"{STACK}: schedules created {STACK}-drift locally" in progress
    [fired] = moto_runner().fire()
    machine = plane.scheduler.get_schedule(Name=f"{STACK}-drift")["Target"]["Arn"]
    assert (fired.target, fired.error) == (machine, None)
    assert fired.execution is not None and fired.execution.startswith(f"{STACK}-drift-")
    assert plane.outputs(machine) == [{"model": "churn", "stage": "us-east-1"}]


def test_an_unchanged_stack_leaves_its_existing_schedules_alone(plane: Plane) -> None:
    template = monitoring_template()
    physical = {"DriftMachine": plane.machine("unchanged"), "SchedulerRole": "scheduler"}
    deferred = DeferredResources(plane.clients, lambda _: None)
    deferred.create_schedules(STACK, template, physical, replace=False)
    plane.scheduler.update_schedule(
        Name=f"{STACK}-drift",
        ScheduleExpression="rate(15 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": physical["DriftMachine"], "RoleArn": ROLE_ARN},
        State="DISABLED",
    )
    deferred.create_schedules(STACK, template, physical, replace=False)
    assert plane.scheduler.get_schedule(Name=f"{STACK}-drift")["State"] == "DISABLED"
    deferred.create_schedules(STACK, template, physical, replace=True)
    assert plane.scheduler.get_schedule(Name=f"{STACK}-drift")["State"] == "ENABLED"


def test_a_rate_schedule_first_fires_one_period_after_start_then_every_period(plane: Plane) -> None:
    machine = plane.machine("every-minute")
    plane.schedule("every-minute", machine)
    start = datetime.now(UTC)
    runner = moto_runner(clock=lambda: start)

    assert runner.run_due(start) == []
    assert runner.run_due(start + timedelta(seconds=59)) == []
    [first] = runner.run_due(start + timedelta(seconds=61))
    assert runner.run_due(start + timedelta(seconds=62)) == []
    [second] = runner.run_due(start + timedelta(seconds=121))

    assert (first.name, second.name) == ("every-minute", "every-minute")
    assert first.execution != second.execution
    sent = [output["at"] for output in plane.outputs(machine)]
    assert sent == [
        (start + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in (1, 2)
    ]  # the scheduled time, not the time the runner noticed


def test_the_runners_thread_fires_a_schedule_when_its_clock_reaches_the_period(plane: Plane) -> None:
    machine = plane.machine("threaded")
    plane.schedule("threaded", machine)
    start = datetime.now(UTC)
    readings = iter([start, start])  # construction and start(); then a minute and a second later
    runner = moto_runner(interval_s=0.01, clock=lambda: next(readings, start + timedelta(seconds=61)))
    runner.start()
    try:
        wait_for(lambda: runner.fired, "the schedule to fire", timeout_s=5)
    finally:
        runner.stop()
    assert [f.name for f in runner.fired] == ["threaded"]
    assert len(plane.outputs(machine)) == 1


def test_disabled_schedules_do_not_fire_on_their_own(plane: Plane) -> None:
    plane.schedule("paused", plane.machine("paused"), State="DISABLED")
    start = datetime.now(UTC)
    runner = moto_runner(clock=lambda: start)
    assert runner.run_due(start + timedelta(minutes=5)) == []


def test_fire_fires_every_enabled_schedule_now_and_named_ones_whatever_their_state(plane: Plane) -> None:
    machine = plane.machine("fire-now")
    plane.schedule("hourly", machine, ScheduleExpression="rate(1 hour)")
    plane.schedule("nightly", machine, ScheduleExpression="cron(0 2 * * ? *)")
    plane.schedule("paused", machine, State="DISABLED")
    runner = moto_runner()

    assert sorted(f.name for f in runner.fire()) == ["hourly", "nightly"]
    assert [f.name for f in runner.fire(["paused"])] == ["paused"]
    with pytest.raises(ScheduleNotFound, match="no schedule named missing"):
        runner.fire(["missing"])
    assert len(plane.outputs(machine)) == 3


def test_a_missing_target_is_reported_and_its_input_dead_lettered(plane: Plane) -> None:
    sqs = plane.clients.client("sqs")
    queue = sqs.create_queue(QueueName="scheduler-dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    gone = f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:gone"
    plane.scheduler.create_schedule(
        Name="orphan",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": gone, "RoleArn": ROLE_ARN, "Input": '{"n": 1}', "DeadLetterConfig": {"Arn": dlq}},
    )
    [fired] = moto_runner().fire()
    assert fired.execution is None and fired.error is not None and "gone" in fired.error
    [message] = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"]) == {"n": 1}
    assert message["MessageAttributes"]["TARGET_ARN"]["StringValue"] == gone


def test_a_lambda_target_is_invoked_with_the_schedules_input(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoked: list[tuple[str, Any]] = []

    def invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
        invoked.append((self.function_name, json.loads(event or "{}")))
        return "null", False, ""

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke_lambda)
    iam = plane.clients.client("iam")
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]}
    iam.create_role(RoleName="scheduled-fn", AssumeRolePolicyDocument=json.dumps(trust))
    arn = plane.clients.lambda_.create_function(
        FunctionName="scheduled-fn",
        Runtime="python3.12",
        Role=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/scheduled-fn",
        Handler="handler.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip: the code never runs here
    )["FunctionArn"]
    plane.schedule("to-lambda", arn)
    [fired] = moto_runner().fire(now=SATURDAY)
    assert fired.error is None
    wait_for(lambda: invoked, "the function to be invoked", timeout_s=5)
    assert invoked == [("scheduled-fn", {"at": "2030-11-23T10:15:30Z"})]


# --- the control channel ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeFired:
    name: str
    target: str
    execution: str | None
    error: str | None = None


@dataclass(frozen=True)
class FakeState:
    value: str
    reason: str


@dataclass(frozen=True)
class FakeChange:
    alarm_name: str
    previous: FakeState
    current: FakeState


class FakeSchedules:
    def __init__(self) -> None:
        self.asked: list[list[str] | None] = []

    def fire(self, names: list[str] | None = None) -> list[FakeFired]:
        self.asked.append(names)
        if names and "missing" in names:
            raise ScheduleNotFound("no schedule named missing")
        return [FakeFired("drift", "arn:aws:states:us-east-1:123456789012:stateMachine:drift", "drift-1a2b")]


class FakeAlarms:
    def __init__(self) -> None:
        self.evaluations = 0

    def evaluate(self) -> list[FakeChange]:
        self.evaluations += 1
        return [FakeChange("drift-alarm", FakeState("OK", "fine"), FakeState("ALARM", "PSI 0.4 > 0.2"))]


@pytest.fixture
def control() -> Iterator[tuple[int, FakeSchedules, FakeAlarms]]:
    schedules, alarms = FakeSchedules(), FakeAlarms()
    server = ControlServer(schedules, alarms, PLANE_CREDENTIALS.secret_access_key)
    port = server.start()
    yield port, schedules, alarms
    server.stop()


def _post(port: int, body: bytes, path: str = "/tick") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {PLANE_CREDENTIALS.secret_access_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_control_server_answers_tick_with_what_fired_and_which_alarms_changed(control: Any) -> None:
    port, schedules, alarms = control
    status, body = _post(port, json.dumps({"schedules": True, "alarms": True, "names": None}).encode())
    assert status == 200
    assert body == {
        "schedules": [
            {
                "name": "drift",
                "target": "arn:aws:states:us-east-1:123456789012:stateMachine:drift",
                "execution": "drift-1a2b",
                "error": None,
            }
        ],
        "alarms": [{"name": "drift-alarm", "previous": "OK", "current": "ALARM", "reason": "PSI 0.4 > 0.2"}],
    }
    assert (schedules.asked, alarms.evaluations) == ([None], 1)


def test_a_tick_for_alarms_only_fires_no_schedule(control: Any) -> None:
    port, schedules, alarms = control
    report = request_tick(
        port, TickRequest(schedules=False, alarms=True), PLANE_CREDENTIALS.secret_access_key
    )
    assert (report.schedules, [a.current for a in report.alarms]) == ([], ["ALARM"])
    assert (schedules.asked, alarms.evaluations) == ([], 1)


def test_a_tick_naming_an_unknown_schedule_answers_404_with_the_name(control: Any) -> None:
    port, _, _ = control
    with pytest.raises(ControlError, match="no schedule named missing") as raised:
        request_tick(port, TickRequest(names=["missing"]), PLANE_CREDENTIALS.secret_access_key)
    assert raised.value.status == 404


def test_a_malformed_tick_is_refused_with_400(control: Any) -> None:
    port, _, alarms = control
    assert _post(port, b'{"schedules": "sometimes", "colour": 1}')[0] == 400
    assert _post(port, b"{}", path="/other")[0] == 404
    assert alarms.evaluations == 0


# --- headrace local tick ------------------------------------------------------------------------------------


def _tick(*args: str) -> Any:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, ["local", "tick", *args])


def _record_plane(work_dir: Path, port: int | None) -> None:
    info = PlaneInfo(
        pid=os.getpid(),
        port=1,
        endpoint="http://127.0.0.1:1",
        control_port=port,
        credentials=PLANE_CREDENTIALS,
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / RUNTIME_FILE).write_text(info.model_dump_json())


def test_tick_without_a_running_plane_exits_2_saying_so(tmp_path: Path) -> None:
    done = _tick("--work-dir", str(tmp_path))
    assert done.exit_code == 2
    assert "no local plane is running" in done.stderr


def test_tick_prints_what_fired_and_which_alarms_changed(control: Any, tmp_path: Path) -> None:
    port, schedules, _ = control
    _record_plane(tmp_path, port)
    done = _tick("--work-dir", str(tmp_path), "--schedules", "--name", "drift")
    assert done.exit_code == 0, done.output
    assert "drift-1a2b" in done.stdout and "alarm" not in done.stdout  # --schedules only
    assert schedules.asked == [["drift"]]
    done = _tick("--work-dir", str(tmp_path), "--json")
    assert json.loads(done.stdout)["alarms"][0]["current"] == "ALARM"


def test_tick_naming_an_unknown_schedule_exits_2(control: Any, tmp_path: Path) -> None:
    port, _, _ = control
    _record_plane(tmp_path, port)
    done = _tick("--work-dir", str(tmp_path), "--name", "missing")
    assert done.exit_code == 2
    assert "no schedule named missing" in done.stderr
