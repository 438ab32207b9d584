"""The local plane: moto's server on 127.0.0.1 plus the compute moto lacks, provisioned from `cdk synth`.

`LocalPlane.start()` brings it up in this process; `headrace local up` runs it in the foreground or as a
detached daemon (`python -m headrace.local.daemon`) and records where it listens in `plane.json`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.config import models_directory
from headrace.local.aws import (
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    Clients,
    local_environment,
    plane_credentials,
    write_private,
)
from headrace.local.network import free_port
from headrace.local.plane_info import DEFAULT_WORK_DIR, RUNTIME_FILE, PlaneInfo
from headrace.local.sagemaker.launchers import Compute

if TYPE_CHECKING:
    from headrace.local.durability import DurableState
    from headrace.local.lambda_runtime import HandlerRuntime
    from headrace.local.seams.cloudwatch import MotoCloudWatch
    from headrace.local.seams.iam import LocalIam
from headrace.naming import DEFAULT_STAGE, Names

# The environment variable that turns the plane's IAM enforcement off (`off`) for debugging.
IAM_SWITCH = "HEADRACE_LOCAL_IAM"


def parse_stages(text: str) -> list[str]:
    """`dev,prod` -> ["dev", "prod"]: each a valid stage name (naming.py), none twice, at least one."""
    stages = [part.strip() for part in text.split(",") if part.strip()]
    if not stages:
        raise ValueError(f"--stages '{text}' names no stage (like dev,prod)")
    for stage in stages:
        Names(stage)  # its own error names the bad one
    twice = sorted({s for s in stages if stages.count(s) > 1})
    if twice:
        raise ValueError(f"--stages '{text}' names {', '.join(twice)} more than once")
    return stages


def stage_accounts(stages: list[str], stages_file: Path | None = None) -> dict[str, str]:
    """Each stage's account: stages.yaml's `account:`; a stage without one deploys to the deploying
    credentials' account, which on the plane is its first stage's (LOCAL_ACCOUNT when that names none)."""
    from headrace.stages import load_stage

    named = {stage: load_stage(stage, stages_file).account for stage in stages}
    default = named[stages[0]] or LOCAL_ACCOUNT
    return {stage: account or default for stage, account in named.items()}


def accounts_enforced(accounts: dict[str, str], enforce_iam: bool) -> None:
    """Refuse stages in several accounts with IAM enforcement off: what keeps one account out of another's
    resources is the plane's IAM (each account's resource policies, seams/iam.py), and without it the plane
    could not tell them apart."""
    if len(set(accounts.values())) > 1 and not enforce_iam:
        listed = ", ".join(f"{stage}: {account}" for stage, account in accounts.items())
        raise ValueError(
            f"stages.yaml puts stages {', '.join(accounts)} in different AWS accounts ({listed}), which the "
            f"local plane keeps apart with its IAM: unset {IAM_SWITCH}=off, or provision one account"
        )


def one_region(stages: list[str], stages_file: Path | None = None) -> None:
    """Refuse a stage that stages.yaml deploys to another region than the one the plane serves: the plane
    would provision it in LOCAL_REGION, and a run that crosses regions (a promotion reading another
    region's registry, bucket and regional key) would pass here untested."""
    from headrace.stages import load_stage

    elsewhere = {stage: region for stage in stages if (region := load_stage(stage, stages_file).region)}
    elsewhere = {stage: region for stage, region in elsewhere.items() if region != LOCAL_REGION}
    if elsewhere:
        listed = ", ".join(f"{stage}: {region}" for stage, region in elsewhere.items())
        raise ValueError(
            f"stages.yaml deploys {listed}, and the local plane serves one region, {LOCAL_REGION}: "
            "comment out those `region:` lines for a local run (on AWS each stage deploys to its region)"
        )


@dataclass
class LocalPlane:
    port: int = 0
    stage: str = DEFAULT_STAGE
    work_dir: Path = DEFAULT_WORK_DIR
    state_dir: Path | None = None
    models_dir: Path | None = None
    progress: Callable[[str], None] = lambda _: None
    # Where training jobs and endpoints run: processes of this Python, or their images under Docker.
    compute: Compute = "subprocess"
    # Authorize every call a deployed resource makes against its role's synthesized policies (seams/iam.py).
    # On by default, as on AWS; HEADRACE_LOCAL_IAM=off turns it off to tell a permission problem from another.
    enforce_iam: bool = field(default_factory=lambda: os.environ.get(IAM_SWITCH, "enforce") != "off")
    # Every stage to provision into the one moto (their stack and resource names carry the stage); empty:
    # just `stage`. The first is the plane's default stage (`stage`). Each is provisioned in its account
    # (stages.yaml `account:`), signed with that account's admin key.
    stages: list[str] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)
    info: PlaneInfo | None = None
    durable: DurableState | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> PlaneInfo:
        # Imported here: moto and the seams load only in the process that runs the plane.
        from headrace.local.cloudformation.assembly import synthesize
        from headrace.local.cloudformation.provisioner import Provisioner
        from headrace.local.cloudwatch.evaluator import AlarmEvaluator, AlarmEvaluators
        from headrace.local.control_server import ControlServer
        from headrace.local.lambda_runtime import HandlerRuntime
        from headrace.local.sagemaker.containers import ImageRegistry
        from headrace.local.sagemaker.hosting import EndpointHosting, served
        from headrace.local.sagemaker.launchers import launcher_for
        from headrace.local.sagemaker.supervision import Supervisor
        from headrace.local.sagemaker.training import TrainingCompute
        from headrace.local.sagemaker.transform import TransformCompute
        from headrace.local.sagemaker.tuning import ApiTrialJobs, TuningCompute
        from headrace.local.scheduler.runner import ScheduleRunner
        from headrace.local.seams import installed
        from headrace.local.seams.authn import Authenticator, state_machines_signed
        from headrace.local.seams.cloudwatch import MotoCloudWatch
        from headrace.local.seams.executions import run_state_machines
        from headrace.local.seams.sagemaker_tuning import MotoTuningRecords
        from headrace.local.seams.scheduler import MotoSchedules
        from headrace.local.seams.server import start_server
        from headrace.local.seams.targets import MotoTargets
        from headrace.local.targets import EventDelivery, TargetDispatcher
        from headrace.local.telemetry import Telemetry

        self._choose_stages()  # before anything starts
        # Absolute from here on: containers run in their own directories, where a path relative to the
        # user's cwd (a foreground `local up`) would name nothing.
        self.work_dir = self.work_dir.resolve()
        self.state_dir = self.state_dir.resolve() if self.state_dir else None
        self.models_dir = self.models_dir.resolve() if self.models_dir else None
        # Containers die with this plane; what a killed one left in this work dir dies before we start.
        supervisor = Supervisor(self.work_dir)
        supervisor.kill_leftovers()
        self._stack.callback(supervisor.stop_all)  # registered first: runs last, after hosting stopped
        launcher = launcher_for(self.compute, supervisor)  # and that Docker answers, for --compute docker
        if self.compute != "subprocess":
            self.progress(f"training jobs and endpoints run under {self.compute}")
        # moto reports resource types it does not model one warning at a time; provisioning lists them once.
        warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
        logging.getLogger("moto").setLevel(logging.ERROR)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.port = self.port or free_port()
        endpoint = f"http://127.0.0.1:{self.port}"
        # moto's ASL interpreter calls its own services at localhost:$MOTO_PORT (default 5000).
        os.environ["MOTO_PORT"] = str(self.port)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        account = self.accounts[self.stage]
        credentials = plane_credentials(self.work_dir)
        others = {a: plane_credentials(self.work_dir, a) for a in self.accounts.values() if a != account}
        keys = {account: credentials, **others}
        # The plane's own process (its containers inherit this environment) signs with the plane's key.
        os.environ.update(local_environment(endpoint, credentials))
        os.environ.pop("AWS_SESSION_TOKEN", None)

        # Each stage's `cdk synth` is a process of its own: they run side by side.
        with ThreadPoolExecutor(len(self.stages)) as synths:
            outdirs = list(synths.map(lambda stage: self._synthesize(synthesize, stage), self.stages))

        if self.state_dir:
            from headrace.local.durability import DurableState

            self.durable = DurableState(self.state_dir)  # refuses another version's state
            if self.durable.restore():
                self.progress(f"restored state from {self.state_dir}")
        # Only requests signed with the plane's keys, each acting in its own account.
        self.authenticator = Authenticator(credentials, account=account, accounts=others)
        self._stack.callback(
            start_server(
                self.port, self.durable.wsgi if self.durable else None, guard=self.authenticator.wsgi
            )
        )
        run_state_machines()
        self._stack.enter_context(state_machines_signed(credentials))
        clients = Clients(endpoint, LOCAL_REGION, account, credentials)
        by_account = {a: Clients(endpoint, LOCAL_REGION, a, key) for a, key in keys.items()}
        accounts = list(by_account)

        runtime = HandlerRuntime(
            self.work_dir / "lambda", local_environment(endpoint, credentials), supervisor=supervisor
        )
        runtime.listeners.append(Telemetry(clients, by_account))
        self._stack.callback(runtime.close)  # the functions' sandboxes are child processes
        targets = TargetDispatcher(MotoTargets())
        delivery = EventDelivery(targets)
        delivery.start()
        self._stack.callback(delivery.stop)
        images = ImageRegistry()
        records = MotoTuningRecords(account, LOCAL_REGION, accounts)
        self.training = TrainingCompute(clients, images, self.work_dir, records, launcher)
        self.transform = TransformCompute(clients, images, self.work_dir, records, launcher)
        # Tuning jobs start their trials through the plane's API in their own account, as SageMaker does, and
        # hear their metrics.
        self.tuning = TuningCompute(records, ApiTrialJobs(by_account))
        self.training.on_metric = self.tuning.observe
        # Each account's alarms evaluated on its own metrics; hosting reads its endpoints' guards wherever.
        watches = [MotoCloudWatch(a, LOCAL_REGION) for a in accounts]

        def alarm_states(names: list[str]) -> dict[str, str]:
            return {k: v for watch in watches for k, v in watch.alarm_states(names).items()}

        self.hosting = EndpointHosting(clients, images, self.work_dir, alarm_states, records, launcher)
        self.hosting._fleets.account_clients = lambda name: by_account[records.account_of("endpoints", name)]
        self.transform.account_clients = by_account.__getitem__
        self._stack.enter_context(served(self.hosting))
        admins = {key.access_key_id: a for a, key in keys.items()}
        iam = self._iam(endpoint, runtime, watches, admins) if self.enforce_iam else None
        self._stack.enter_context(
            installed(runtime, delivery, self.training, self.hosting, iam, self.transform, self.tuning)
        )
        self.delivery = delivery
        # Inside the seams, so alarm state changes reach Lambda and Step Functions targets; stopped first.
        self.alarms = AlarmEvaluators([AlarmEvaluator(watch, interval_s=0.5) for watch in watches])
        self.alarms.start()
        self._stack.callback(self.alarms.stop)
        self._autoscaling(by_account)
        self.schedules = ScheduleRunner(MotoSchedules(account, LOCAL_REGION, accounts), targets)
        if iam:
            from headrace.local.seams.iam_targets import ScheduleTargets

            self.schedules.authorize = ScheduleTargets(iam)
        self.schedules.start()
        self._stack.callback(self.schedules.stop)
        self.control = ControlServer(self.schedules, self.alarms, credentials.secret_access_key)
        control_port = self.control.start()
        self._stack.callback(self.control.stop)

        outputs = self._provision(outdirs, by_account, Provisioner, images)
        if self.durable:  # from here on, every change is committed before it is acknowledged
            self.durable.open()
        self.info = PlaneInfo(
            pid=os.getpid(),
            port=self.port,
            endpoint=endpoint,
            stage=self.stage,
            stages=self.stages,
            state_dir=str(self.state_dir) if self.state_dir else None,
            outputs=outputs,
            started_at=time.time(),
            control_port=control_port,
            credentials=credentials,
            models_dir=str(models_directory(self.models_dir).resolve()),
            account=account,
            accounts=self.accounts,
            account_credentials=others,
        )
        runtime_file = self.work_dir / RUNTIME_FILE
        write_private(runtime_file, self.info.model_dump_json(indent=1))  # it holds the plane's secret
        self._stack.callback(runtime_file.unlink, missing_ok=True)
        return self.info

    def _iam(
        self,
        endpoint: str,
        runtime: HandlerRuntime,
        watches: list[MotoCloudWatch],
        admins: dict[str, str],
    ) -> LocalIam:
        """Functions, state machines and SageMaker compute act as their roles, alarm actions as CloudWatch;
        the plane's keys are admin of their own accounts (`admins`: account by key id), and reach another
        account's resources only as its policies allow."""
        from headrace.local.seams.iam import LocalIam
        from headrace.local.seams.iam_targets import AlarmActions

        iam = LocalIam(self.accounts[self.stage], LOCAL_REGION, admins)
        self.authenticator.trust(iam.sessions.issued)  # role sessions' keys are let in as their roles
        runtime.credentials = lambda spec: (
            iam.function_credentials(spec.role_arn, spec.name) if spec.role_arn else {}
        )
        self.training.role_clients = lambda role: iam.role_clients(endpoint, role)
        self.hosting._fleets.model_clients = lambda model: iam.model_clients(endpoint, model)
        self.transform.model_clients = lambda model: iam.model_clients(endpoint, model)
        for watch in watches:
            watch.publish = AlarmActions(iam).checked(watch.publish)  # type: ignore[method-assign,assignment]
        self.iam = iam
        self.progress("IAM enforced: functions, state machines and SageMaker act as their roles")
        return iam

    def _provision(
        self, outdirs: list[Path], by_account: dict[str, Clients], provisioner: Any, images: Any
    ) -> dict[str, dict[str, str]]:
        """Each stage's stacks in its own account; then what a restored plane left running is reconciled."""
        outputs: dict[str, dict[str, str]] = {}
        for stage, outdir in zip(self.stages, outdirs, strict=True):
            where = f" in account {self.accounts[stage]}" if len(by_account) > 1 else ""
            self.progress(f"provisioning stage {stage}'s stacks{where} from the synthesized templates")
            outputs |= provisioner(by_account[self.accounts[stage]], self.progress, images).deploy(outdir)
        self.hosting.restore()
        if self.state_dir:
            for stage in self.stages:
                for note in self._reconcile(by_account[self.accounts[stage]], stage):
                    self.progress(note)
        return outputs

    def _autoscaling(self, by_account: dict[str, Clients]) -> None:
        """Target-tracking policies on the endpoints' variants, evaluated from their own metrics, each
        account's with its own clients."""
        from headrace.local.autoscaling.evaluator import ScalingEvaluator, ScalingEvaluators
        from headrace.local.seams.autoscaling import activities_answered

        window = float(os.environ.get("HEADRACE_LOCAL_SCALING_WINDOW_S", "60"))
        self.scaling = ScalingEvaluators(
            {a: ScalingEvaluator(c, self.hosting.scale, window_s=window) for a, c in by_account.items()}
        )
        self._stack.enter_context(activities_answered(self.scaling.activities))
        self.scaling.start()
        self._stack.callback(self.scaling.stop)

    def _choose_stages(self) -> None:
        self.stages = list(self.stages) or [self.stage]
        self.stage = self.stages[0]
        for stage in self.stages:
            Names(stage)  # its error names a bad stage
        self.accounts = {**stage_accounts(self.stages), **self.accounts}
        accounts_enforced(self.accounts, self.enforce_iam)
        one_region(self.stages)

    def _synthesize(self, synthesize: Callable[[Path, str, Path | None], Path], stage: str) -> Path:
        self.progress(f"synthesizing the CDK app for stage {stage}")
        return synthesize(self.assembly_dir(stage), stage, self.models_dir)

    def assembly_dir(self, stage: str) -> Path:
        """Each stage's own cloud assembly: the first stage's where a one-stage plane has always kept it."""
        return self.work_dir / ("cdk.out" if stage == self.stages[0] else f"cdk.out-{stage}")

    def _reconcile(self, clients: Clients, stage: str) -> list[str]:
        """End or resume what the stopped plane left running, and deliver what it acknowledged but had not
        delivered, as AWS would have (reconcile.py)."""
        from headrace.config import load_models
        from headrace.deployment import describe
        from headrace.ingest.aws import StepFunctionsRuns
        from headrace.ledger import DynamoLedger
        from headrace.local.reconcile import DataPlane, redeliver
        from headrace.local.seams.executions import MotoUploads, end_interrupted, execution_exists

        first = self.stages.index(stage) == min(
            i for i, s in enumerate(self.stages) if self.accounts[s] == self.accounts[stage]
        )
        notes = end_interrupted(clients.account, LOCAL_REGION) if first else []  # once per account
        deployment = describe(clients.cloudformation, Names(stage), load_models(self.models_dir))
        data = DataPlane(
            bucket=deployment.data_bucket,
            incoming={m.name: m.incoming_prefix for m in deployment.models},
            records=DynamoLedger(clients.client("dynamodb"), deployment.ledger_table),
            runs=StepFunctionsRuns(
                clients.client("stepfunctions"),
                {m.name: m.training_state_machine_arn for m in deployment.models},
            ),
            execution_exists=execution_exists,
        )
        return notes + redeliver(data, MotoUploads(clients.account))

    def stop(self) -> None:
        if self.info:
            # Endpoints first, while the seams and the state commits still run: their last captures and
            # metrics are saved, not refused by moto's own bucket policies (403) once the seams are gone.
            self.hosting.stop()
        if self.durable and self.info:
            self.control.stop()  # not moving alarms or starting executions while they are pickled
            self.schedules.stop()
            self.alarms.stop()
            self.delivery.wait_idle(timeout_s=10)
            skipped = self.durable.close()
            self.progress(
                f"state saved to {self.state_dir}" + (f" (not saved: {skipped})" if skipped else "")
            )
        self._stack.close()
        self.info = None
