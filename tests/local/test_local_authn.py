"""Only the plane's own clients reach it: moto behind seams/authn.py's gate, and the control port's secret."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from headrace.local.aws import LOCAL_REGION, Clients, PlaneCredentials
from headrace.local.control_server import ControlError, ControlServer, TickRequest, request_tick
from headrace.local.iam.sessions import RoleSessions
from headrace.local.network import free_port
from headrace.local.seams.authn import Authenticator
from headrace.local.seams.server import start_server

BUCKET = "authn-bucket"
ROLE = "arn:aws:iam::123456789012:role/worker"


class GatedPlane:
    def __init__(self, endpoint: str, credentials: PlaneCredentials, sessions: RoleSessions) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.sessions = sessions
        self.clients = Clients(endpoint, credentials=credentials)

    def client(self, service: str, key: str, secret: str, token: str | None = None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def gated() -> Iterator[GatedPlane]:
    credentials = PlaneCredentials.generate()
    sessions = RoleSessions("123456789012")
    authenticator = Authenticator(credentials)
    authenticator.trust(sessions.issued)
    port = free_port()
    stop = start_server(port, guard=authenticator.wsgi)
    plane = GatedPlane(f"http://127.0.0.1:{port}", credentials, sessions)
    plane.clients.s3.create_bucket(Bucket=BUCKET)
    try:
        yield plane
    finally:
        stop()


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response: Any = error.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/moto-api/reset"), ("GET", "/moto-api/data.json"), ("POST", "/moto-api/config")],
)
def test_moto_admin_api_is_refused_and_state_survives(gated: GatedPlane, method: str, path: str) -> None:
    answer = requests.request(method, gated.endpoint + path, json={}, timeout=10)
    assert answer.status_code == 403
    assert "AccessDenied" in answer.text and BUCKET not in answer.text
    names = [b["Name"] for b in gated.clients.s3.list_buckets()["Buckets"]]
    assert BUCKET in names


def test_a_foreign_origin_gets_no_cors_allowance(gated: GatedPlane) -> None:
    preflight = requests.options(
        f"{gated.endpoint}/{BUCKET}/x",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    url = gated.clients.s3.generate_presigned_url("list_objects_v2", Params={"Bucket": BUCKET})
    signed = requests.get(url, headers={"Origin": "http://evil.example"}, timeout=10)
    assert signed.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h in signed.headers)


def test_an_unsigned_request_is_refused_in_s3s_format(gated: GatedPlane) -> None:
    answer = requests.get(f"{gated.endpoint}/{BUCKET}", timeout=10)
    assert answer.status_code == 403
    assert "<Code>AccessDenied</Code>" in answer.text


def test_an_unknown_key_is_refused_in_each_services_format(gated: GatedPlane) -> None:
    with pytest.raises(ClientError) as s3:
        gated.client("s3", "AKIAUNKNOWN000000000", "x" * 40).list_buckets()
    assert _code(s3) == (403, "InvalidAccessKeyId")
    with pytest.raises(ClientError) as dynamodb:
        gated.client("dynamodb", "AKIAUNKNOWN000000000", "x" * 40).list_tables()
    assert _code(dynamodb) == (403, "UnrecognizedClientException")
    with pytest.raises(ClientError) as iam:
        gated.client("iam", "AKIAUNKNOWN000000000", "x" * 40).list_roles()
    assert _code(iam) == (403, "InvalidClientTokenId")


def test_the_old_shared_test_key_is_refused(gated: GatedPlane) -> None:
    with pytest.raises(ClientError) as refused:
        gated.client("s3", "testing", "testing", "testing").list_buckets()
    assert _code(refused) == (403, "InvalidAccessKeyId")


def test_a_bad_signature_is_refused(gated: GatedPlane) -> None:
    wrong = gated.credentials.secret_access_key[::-1]
    with pytest.raises(ClientError) as s3:
        gated.client("s3", gated.credentials.access_key_id, wrong).list_buckets()
    assert _code(s3) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as sqs:
        gated.client("sqs", gated.credentials.access_key_id, wrong).list_queues()
    assert _code(sqs)[0] == 403


def test_the_planes_key_works_with_plain_boto3_across_protocols(gated: GatedPlane) -> None:
    key = "dir with spaces/ünïcode+plus=eq&amp.csv"
    gated.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n1,2\n", Metadata={"origin": "test"})
    assert gated.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"a,b\n1,2\n"
    listed = gated.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="dir with", Delimiter="/")
    assert listed["CommonPrefixes"] == [{"Prefix": "dir with spaces/"}]
    sqs = gated.clients.client("sqs")
    queue = sqs.create_queue(QueueName="authn-queue")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody='{"x": "y z"}')
    gated.clients.client("iam").list_roles(PathPrefix="/")
    gated.clients.client("dynamodb").list_tables()
    with pytest.raises(ClientError) as missing:  # a REST-JSON path with an ARN in it
        gated.clients.lambda_.get_function(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:nope")
    assert _code(missing)[1] == "ResourceNotFoundException"


def test_a_presigned_url_works_until_it_expires(gated: GatedPlane) -> None:
    gated.clients.s3.put_object(Bucket=BUCKET, Key="shared/report.csv", Body=b"ok")
    url = gated.clients.s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "shared/report.csv"}, ExpiresIn=60
    )
    assert requests.get(url, timeout=10).content == b"ok"
    tampered = url.replace("report.csv", "other.csv")
    assert requests.get(tampered, timeout=10).status_code == 403
    expired = gated.clients.s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "shared/report.csv"}, ExpiresIn=1
    )
    time.sleep(2)
    answer = requests.get(expired, timeout=10)
    assert answer.status_code == 403 and "expired" in answer.text


def test_a_sigv4_presigned_url_works_as_the_aws_cli_makes_it(gated: GatedPlane) -> None:
    gated.clients.s3.put_object(Bucket=BUCKET, Key="v4/a b.csv", Body=b"v4")
    s3v4 = boto3.client(
        "s3",
        endpoint_url=gated.endpoint,
        region_name=LOCAL_REGION,
        aws_access_key_id=gated.credentials.access_key_id,
        aws_secret_access_key=gated.credentials.secret_access_key,
        config=Config(signature_version="s3v4"),
    )
    url = s3v4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "v4/a b.csv"})
    assert "X-Amz-Signature=" in url
    assert requests.get(url, timeout=10).content == b"v4"
    assert (
        requests.get(url.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601"), timeout=10).status_code == 403
    )


def test_a_role_session_key_is_let_in_with_its_token_only(gated: GatedPlane) -> None:
    session = gated.sessions.credentials(ROLE, "worker")
    client = gated.client("s3", session.access_key_id, session.secret_access_key, session.session_token)
    assert BUCKET in [b["Name"] for b in client.list_buckets()["Buckets"]]
    forged = gated.client("s3", session.access_key_id, session.secret_access_key, "forged-token")
    with pytest.raises(ClientError) as refused:
        forged.list_buckets()
    assert _code(refused)[0] == 403


def test_a_refused_upload_leaves_the_connection_usable(gated: GatedPlane) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(gated.endpoint.rsplit(":", 1)[1]), timeout=10)
    connection.request("PUT", f"/{BUCKET}/unsigned", body=b"x" * 4096)
    first = connection.getresponse()
    assert (first.status, b"AccessDenied" in first.read()) == (403, True)
    connection.request("GET", f"/{BUCKET}")
    assert connection.getresponse().status == 403
    connection.close()
    assert "Contents" not in gated.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="unsigned")


# --- the control port ---------------------------------------------------------------------------------------


class _Nothing:
    def fire(self, names: list[str] | None = None) -> list[Any]:
        return []

    def evaluate(self) -> list[Any]:
        return []


@pytest.fixture
def control() -> Iterator[tuple[int, str]]:
    secret = PlaneCredentials.generate().secret_access_key
    server = ControlServer(_Nothing(), _Nothing(), secret)
    try:
        yield server.start(), secret
    finally:
        server.stop()


def test_the_control_port_refuses_a_tick_without_the_secret(control: tuple[int, str]) -> None:
    port, secret = control
    unsigned = requests.post(f"http://127.0.0.1:{port}/tick", json={}, timeout=10)
    assert unsigned.status_code == 403
    with pytest.raises(ControlError) as wrong:
        request_tick(port, TickRequest(), secret[::-1])
    assert wrong.value.status == 403
    assert request_tick(port, TickRequest(), secret).schedules == []


def test_the_control_port_answers_a_bad_content_length_with_400(control: tuple[int, str]) -> None:
    port, secret = control
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/tick")
    connection.putheader("Authorization", f"Bearer {secret}")
    connection.putheader("Content-Length", "not-a-number")
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 400 and b"Content-Length" in answer.read()
    connection.close()
