"""REST: stock `mlflow models serve`, and the project's own service, as real servers on 127.0.0.1."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import mlflow
import pytest
from mlflow import MlflowClient

from crm_modes.data.generator import generate_book
from tests.conftest import free_port, wait_for_http
from tests.serve.credentials import ANONYMOUS, CREDENTIALS, bearer, write_credentials

pytestmark = pytest.mark.integration


def records(count: int, seed: int = 61) -> list[dict]:
    book = generate_book(count, seed=seed)
    book = book.drop(
        columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )
    rows = json.loads(book.to_json(orient="records", date_format="iso"))
    for row in rows:
        row["snapshot_date"] = row["snapshot_date"][:10]
    return rows


def call(url: str, body: object | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """GET (or POST ``body``) with the all-scopes credential unless ``headers`` say otherwise."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **bearer(), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Server:
    def __init__(self, args: list[str], env: dict, cwd, health: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*args, "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(self.url + health, timeout=180, process=self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def test_stock_mlflow_models_serve_answers(advisor_store):
    server = Server(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/crm-advisor@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
        ],
        advisor_store["env"],
        advisor_store["folder"],
        "/ping",
    )
    try:
        rows = records(3)
        columns = list(rows[0])
        body = {"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}}
        status, answer = call(server.url + "/invocations", body)
        assert status == 200, answer
        predictions = answer["predictions"]
        assert len(predictions) == 3
        assert predictions[0]["facility_id"] == rows[0]["facility_id"]
        assert 0.0 <= predictions[0]["default_probability"] <= 1.0
        assert predictions[0]["recommended_mode"] in ("basic", "reactive", "responsible")
        assert predictions[0]["committee_mode"] in ("basic", "reactive", "responsible")
        values = [predictions[0][f"value_{mode}"] for mode in ("basic", "reactive", "responsible")]
        assert all(isinstance(value, float) for value in values)
        assert " over " in predictions[0]["recommendation_reason"]
        assert predictions[0]["model_version"].startswith("crm-advisor (")
        assert "crm-mode v1" in predictions[0]["model_version"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(cli, advisor_store, tmp_path_factory):
    credentials = write_credentials(tmp_path_factory.mktemp("credentials"))
    command = [cli, "serve", "--host", "127.0.0.1", "--credentials", str(credentials)]
    command += ["--header-timeout", "2", "--body-timeout", "10"]  # short, for the slow-request tests
    server = Server(command, advisor_store["env"], advisor_store["folder"], "/health")
    yield server
    server.stop()


def test_health_ready_and_version(service):
    assert call(service.url + "/health") == (200, {"status": "ok"})
    assert call(service.url + "/ready") == (200, {"status": "ready", "model_version": "crm-advisor v1"})
    status, version = call(service.url + "/version")
    assert status == 200
    assert version.pop("worker") == str(service.process.pid)
    assert version == {
        "model_uri": "models:/crm-advisor@champion",
        "model_version": "crm-advisor v1",
        "pinned_uri": "models:/crm-advisor/1",
    }


def test_concurrent_requests_each_get_their_own_answer_as_if_sent_alone(service):
    """The service scores requests that wait meanwhile in one call (serve/batcher.py)."""
    rows = records(24, seed=67)
    bodies = [rows[i : i + 3] for i in range(0, 24, 3)]
    bodies[1] = [
        {k: v for k, v in row.items() if k != "client_id"} for row in bodies[1]
    ]  # unsent: unanswered
    alone = [call(service.url + "/v1/score", {"records": body}) for body in bodies]
    answers: dict[int, tuple[int, dict]] = {}
    start = threading.Barrier(len(bodies))

    def send(index: int) -> None:
        start.wait()
        answers[index] = call(service.url + "/v1/score", {"records": bodies[index]})

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answers[index] for index in range(len(bodies))] == alone
    assert all(status == 200 for status, _ in alone)
    assert "client_id" not in alone[1][1]["scores"][0]
    assert alone[2][1]["scores"][0]["client_id"] == bodies[2][0]["client_id"]


def test_scores_one_or_many_records(service):
    rows = records(5)
    status, answer = call(service.url + "/v1/score", {"records": rows})
    assert status == 200, answer
    assert answer["model_version"] == "crm-advisor v1"
    assert [score["facility_id"] for score in answer["scores"]] == [row["facility_id"] for row in rows]
    single = call(service.url + "/v1/score", {"records": rows[:1]})[1]["scores"][0]
    assert single == answer["scores"][0]
    assert {"value_basic", "value_reactive", "value_responsible", "committee_mode"} <= set(single)
    assert single["recommendation_reason"].startswith(single["recommended_mode"] + " over ")
    anonymous = {k: v for k, v in rows[0].items() if k not in ("client_id", "facility_id", "snapshot_date")}
    status, answer = call(service.url + "/v1/score", {"records": [anonymous]})
    assert status == 200, answer
    assert answer["scores"][0]["default_probability"] == single["default_probability"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("leverage", -3, "greater than or equal to 0"),
        ("segment", "bank", "Input should be 'sme', 'mid_corporate', 'large_corporate' or 'multinational'"),
        ("internal_rating", 11, "less than or equal to 10"),
        ("utilization", None, "Input should be a valid number"),
        ("colour", "red", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_field_is_a_422_naming_it(service, field, value, problem):
    row = records(1)[0] | {field: value}
    status, answer = call(service.url + "/v1/score", {"records": [row]})
    assert status == 422
    detail = answer["detail"][0]
    assert detail["loc"] == ["body", "records", 0, field]
    assert problem in detail["msg"]


def test_reload_needs_the_admin_scope(service):
    assert call(service.url + "/admin/reload", {}, ANONYMOUS)[0] == 401
    assert call(service.url + "/admin/reload", {}, {"Authorization": "Bearer wrong"})[0] == 401
    assert call(service.url + "/admin/reload", {}, bearer("read"))[0] == 403


def train_and_promote(cli, store) -> None:
    for args in (["train", "--config", str(store["config"])], ["promote", "--config", str(store["config"])]):
        result = subprocess.run(
            [cli, *args], cwd=store["folder"], env=store["env"], capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]


def test_reload_swaps_in_the_new_champion_without_dropping_requests(cli, service, advisor_store):
    train_and_promote(cli, advisor_store)
    rows = records(2)
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def keep_scoring() -> None:
        while not stop.is_set():
            status, answer = call(service.url + "/v1/score", {"records": rows})
            statuses.append(status)
            if status == 200:
                versions.add(answer["model_version"])

    workers = [threading.Thread(target=keep_scoring) for _ in range(3)]
    for worker in workers:
        worker.start()
    status, answer = call(service.url + "/admin/reload", {}, bearer("admin"))
    after = [call(service.url + "/v1/score", {"records": rows}) for _ in range(3)]
    stop.set()
    for worker in workers:
        worker.join()
    assert status == 200, answer
    assert answer == {"previous_version": "crm-advisor v1", "model_version": "crm-advisor v2"}
    assert statuses
    assert set(statuses) == {200}
    assert versions <= {"crm-advisor v1", "crm-advisor v2"}
    assert all(code == 200 and body["model_version"] == "crm-advisor v2" for code, body in after)
    assert call(service.url + "/version")[1]["model_version"] == "crm-advisor v2"


def versions_by_worker(url: str, *, until: Callable[[dict[str, str]], bool], timeout: float = 180) -> dict:
    """The version each worker answers /version with, polled on new connections until ``until`` holds."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer = call(url + "/version")
        if status == 200:
            seen[answer["worker"]] = answer["model_version"]
            if until(seen):
                return seen
        time.sleep(0.05)
    raise AssertionError(f"workers answered {seen}")


def test_every_worker_serves_the_version_one_worker_reloaded(cli, advisor_store, tmp_path):
    client = MlflowClient(tracking_uri=advisor_store["uri"])
    if len(client.search_model_versions("name='crm-advisor'")) < 2:
        train_and_promote(cli, advisor_store)  # this test alone: make the second version
    client.set_registered_model_alias("crm-advisor", "workers-test", "1")
    model = ["--model", "models:/crm-advisor@workers-test", "--credentials", str(write_credentials(tmp_path))]
    server = Server(
        [cli, "serve", "--host", "127.0.0.1", "--workers", "2", *model],
        advisor_store["env"],
        advisor_store["folder"],
        "/ready",
    )
    try:
        before = versions_by_worker(server.url, until=lambda seen: len(seen) == 2)
        assert set(before.values()) == {"crm-advisor v1"}
        client.set_registered_model_alias("crm-advisor", "workers-test", "2")
        status, answer = call(server.url + "/admin/reload", {}, bearer("admin"))
        assert status == 200, answer
        assert answer["model_version"] == "crm-advisor v2"
        # the other worker follows the announcement; both answer v2, neither went back
        after = versions_by_worker(
            server.url, until=lambda seen: len(seen) == 2 and set(seen.values()) == {"crm-advisor v2"}
        )
        assert set(after) == set(before)
        rows = records(3)
        answers = [call(server.url + "/v1/score", {"records": rows}) for _ in range(6)]
        assert all(code == 200 and body["model_version"] == "crm-advisor v2" for code, body in answers)
    finally:
        server.stop()
        client.delete_registered_model_alias("crm-advisor", "workers-test")


# Trust boundary: every bad request is a 4xx naming the problem, in a bounded answer.


def send(url: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **bearer(), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def raw_http(port: int, head: bytes) -> bytes:
    """Send raw bytes (headers no HTTP library would send) and return the start of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('"leverage": NaN', "NaN is not a JSON number"),
        ('"leverage": Infinity', "Infinity is not a JSON number"),
        ('"leverage": -Infinity', "-Infinity is not a JSON number"),
        ('"leverage": 1.0, "leverage": 2.0', "key 'leverage' appears twice in one JSON object"),
    ],
)
def test_json_that_is_not_strict_json_is_a_422(service, text, problem):
    row = records(1)[0]
    body = json.dumps({"records": [row]}).replace(f'"leverage": {json.dumps(row["leverage"])}', text)
    assert text in body
    status, answer = send(service.url + "/v1/score", body.encode())
    assert status == 422
    assert problem in json.loads(answer)["detail"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("leverage", True, "Input should be a valid number"),
        ("internal_rating", False, "Input should be a valid integer"),
        ("internal_rating", 4.5, "Input should be a valid integer"),
        ("leverage", "1.5", "Input should be a valid number"),
        ("snapshot_date", "0816-09-06", "greater than or equal to 1900-01-01"),
        ("client_id", "x" * 65, "at most 64 characters"),
    ],
)
def test_wrong_json_types_are_a_422(service, field, value, problem):
    status, answer = call(service.url + "/v1/score", {"records": [records(1)[0] | {field: value}]})
    assert status == 422
    assert answer["detail"][0]["loc"] == ["body", "records", 0, field]
    assert problem in answer["detail"][0]["msg"]


def test_integral_floats_unicode_and_mixed_optional_fields_are_scored(service):
    rows = records(3)
    rows[0] = rows[0] | {"internal_rating": float(rows[0]["internal_rating"]), "client_id": "客户-é ✓"}
    del rows[1]["snapshot_date"]
    del rows[2]["facility_id"]
    status, answer = call(service.url + "/v1/score", {"records": rows})
    assert status == 200, answer
    scores = answer["scores"]
    assert scores[0]["client_id"] == "客户-é ✓"
    assert scores[1]["snapshot_date"] is None
    assert scores[0]["snapshot_date"] == rows[0]["snapshot_date"]
    assert scores[2]["facility_id"] is None
    assert scores[1]["facility_id"] == rows[1]["facility_id"]


def test_a_facility_month_twice_in_one_request_is_refused_as_the_batch_gate_does(service):
    rows = records(3)
    status, answer = call(service.url + "/v1/score", {"records": [rows[0], rows[1], rows[0]]})
    assert status == 422
    assert answer["detail"].startswith("records 0 and 2 are the same facility-month")
    assert rows[0]["facility_id"] in answer["detail"]


def test_unknown_fields_with_unicode_names_are_a_422(service):
    status, answer = call(service.url + "/v1/score", {"records": [records(1)[0] | {"客户": 1}]})
    assert status == 422
    assert answer["detail"][0]["loc"] == ["body", "records", 0, "客户"]
    assert answer["detail"][0]["msg"] == "Extra inputs are not permitted"


def test_error_answers_never_echo_the_input(service):
    row = records(1)[0]
    status, answer = send(
        service.url + "/v1/score", json.dumps({"records": [row | {"client_id": "x" * 5_000_000}]}).encode()
    )
    assert status == 422
    assert len(answer) < 1_000
    status, answer = send(service.url + "/v1/score", json.dumps({"records": [row] * 10_001}).encode())
    assert status == 413  # counted before any record is validated
    assert json.loads(answer)["detail"] == (
        "10,001 records in one request; this service takes at most 10,000"
    )


def test_bodies_above_the_limit_get_a_413_before_they_are_read(service):
    head = (
        b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: " + bearer()["Authorization"].encode() + b"\r\n"
        b"Content-Length: 90000000\r\n\r\n{"
    )
    answer = raw_http(service.port, head)  # 90 MB declared, one byte sent: refused at once
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"request body too large: 90,000,000 bytes declared" in answer
    assert b"the limit is 40,964,096 bytes" in answer  # 4 KiB for each of 10,000 records


def test_only_a_bearer_token_is_accepted_and_any_bytes_are_compared_safely(service):
    token = CREDENTIALS["admin"][2]
    for authorization in (token, f"Bearer  x{token}", f"Token {token}", f"Basic {token}"):
        status, answer = call(service.url + "/admin/reload", {}, {"Authorization": authorization})
        assert status == 401, authorization
        assert answer["detail"].startswith("not authenticated")
    head = (
        b"POST /admin/reload HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xc3\xa9\xff\x80\r\nContent-Length: 0\r\n\r\n"
    )
    answer = raw_http(service.port, head)
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"the token matches no credential of this service" in answer


@pytest.fixture
def advisor_registry(advisor_store):
    """MLflow pointed at the advisor store in this process (the registry resolves sources through it)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(advisor_store["uri"])
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


def test_a_reload_to_an_unloadable_version_is_a_503_and_the_old_model_keeps_serving(
    service, advisor_registry
):
    """A version registered without a manifest (as by another tool) cannot be verified, so not loaded."""
    client = advisor_registry
    champion = client.get_model_version_by_alias("crm-advisor", "champion")
    unsealed = client.create_model_version("crm-advisor", champion.source)
    serving = call(service.url + "/version")[1]["model_version"]
    client.set_registered_model_alias("crm-advisor", "champion", unsealed.version)
    try:
        status, answer = call(service.url + "/admin/reload", {}, bearer("admin"))
        assert status == 503
        assert answer["detail"].startswith(
            f"reload of models:/crm-advisor@champion failed, still serving {serving}"
        )
        assert "has no 'artifacts_sha256' tag" in answer["detail"]
        assert call(service.url + "/version")[1]["model_version"] == serving
        assert call(service.url + "/v1/score", {"records": records(1)})[0] == 200
    finally:
        client.set_registered_model_alias("crm-advisor", "champion", champion.version)


def test_two_reloads_at_once_one_is_a_409(service):
    answers: list[int] = []

    def reload() -> None:
        answers.append(call(service.url + "/admin/reload", {}, bearer("admin"))[0])

    threads = [threading.Thread(target=reload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409]


def test_headers_above_the_limit_get_a_431_and_the_connection_closes(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(2_000):  # up to 128 MB: the server stops reading long before
                connection.sendall(b"a" * 65_536)
        except OSError:
            pass  # closed by the server
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b"request headers above 65,536 bytes" in answer
    assert call(service.url + "/health") == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Half: ", "headers"),
        (
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\nAuthorization: Bearer crm_test-score-19ab\r\n\r\n{"rec',
            "body",
        ),
    ],
)
def test_a_request_that_stops_halfway_gets_a_408_and_is_closed(service, head, what):
    """Headers have 2 s and a body 10 s here (--header-timeout, --body-timeout)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as connection:
        connection.sendall(head)
        answer = connection.recv(4096)
        assert connection.recv(4096) == b""  # closed
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    limit = 2 if what == "headers" else 10
    assert f"the request's {what} did not arrive within {limit} s".encode() in answer


def test_one_object_with_forty_thousand_keys_is_refused_fast_and_health_does_not_wait(service):
    keys = ",".join(f'"k{index}":0' for index in range(40_000))
    body = ("{" + keys + ',"k39999":0}').encode()
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            call(service.url + "/health")
            latencies.append(time.monotonic() - started)

    prober = threading.Thread(target=probe)
    prober.start()
    status, answer = send(service.url + "/v1/score", body)
    stop.set()
    prober.join()
    assert status == 422
    assert json.loads(answer)["detail"] == "key 'k39999' appears twice in one JSON object"
    assert latencies  # /health answered meanwhile (its latency is measured by bench_rest_hostile.py)


def test_a_number_is_not_a_date(service):
    status, answer = call(service.url + "/v1/score", {"records": [records(1)[0] | {"snapshot_date": 0}]})
    assert status == 422
    assert answer["detail"][0]["msg"] == "Value error, a date is text, YYYY-MM-DD, not a number"


def test_the_service_serves_https_with_the_certificate_it_is_given(cli, advisor_store, tmp_path):
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            cli,
            "serve",
            "--port",
            str(port),
            "--ssl-certfile",
            str(tmp_path / "cert.pem"),
            "--ssl-keyfile",
            str(tmp_path / "key.pem"),
        ],
        cwd=advisor_store["folder"],
        env=advisor_store["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/health", context=context, timeout=5
                ) as answer:
                    assert json.loads(answer.read()) == {"status": "ok"}
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, "the service stopped"
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.5)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP on that port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
    finally:
        process.terminate()
        process.wait(timeout=20)
