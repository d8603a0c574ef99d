"""The service's memory endpoints and who may call each route, on a real server on 127.0.0.1, over
SQLite and the real PostgreSQL."""

import datetime as dt

import pytest

from crm_modes.state.queries import access_entries
from crm_modes.state.record import record_scores
from crm_modes.state.store import connect
from tests.serve.credentials import ANONYMOUS, CREDENTIALS, bearer, write_credentials
from tests.serve.test_rest import Server, call, records, send
from tests.state.test_store import POLICY, month, scores

pytestmark = pytest.mark.integration


@pytest.fixture
def service_with_memory(cli, advisor_store, state_url, tmp_path):
    for index, codes in enumerate([{"F0": "PD_WATCH", "F1": "DPD_1"}, {"F0": "PD_WARNING"}]):
        path = tmp_path / f"scores-{index}.parquet"
        scores(month(index), codes).to_parquet(path)
        record_scores(connect(state_url), path, POLICY, queue_seconds=0)
    command = [cli, "serve", "--host", "127.0.0.1", "--state", state_url]
    server = Server(
        [*command, "--credentials", str(write_credentials(tmp_path))],
        advisor_store["env"],
        tmp_path,
        "/health",
    )
    server.state_url = state_url
    yield server
    server.stop()


def test_history_alerts_and_acknowledgement_over_rest(service_with_memory):
    url = service_with_memory.url
    status, history = call(url + "/v1/facilities/F0/history", headers=bearer("read"))
    assert status == 200
    assert [row["snapshot_date"] for row in history["decisions"]] == [str(month(0)), str(month(1))]
    assert [event["event"] for event in history["alert_events"]] == ["new", "escalated"]
    status, answer = call(url + "/v1/facilities/NOPE/history")
    assert (status, answer["detail"]) == (404, "facility 'NOPE' was never recorded")

    status, listed = call(url + "/v1/alerts?status=open", headers=bearer("read"))
    assert status == 200
    assert {(a["facility_id"], a["topic"], a["status"]) for a in listed["alerts"]} == {
        ("F0", "PD", "escalated"),
        ("F1", "DPD", "new"),  # cleared once: still open
    }
    assert call(url + "/v1/alerts?status=closed")[0] == 422
    alert = next(a for a in listed["alerts"] if a["facility_id"] == "F0")

    note = {"note": "client called"}
    status, answer = call(url + f"/v1/alerts/{alert['id']}/ack", note, ANONYMOUS)
    assert (status, answer["detail"]) == (401, "not authenticated: send 'Authorization: Bearer <token>'")
    status, answer = call(url + f"/v1/alerts/{alert['id']}/ack", note, bearer("read"))
    assert (status, answer["detail"]) == (403, "'auditor' lacks the 'acknowledge' scope this route needs")
    # who acknowledges is the credential's holder; a name in the body is refused, not believed
    status, answer = call(
        url + f"/v1/alerts/{alert['id']}/ack", {"by": "mallory", **note}, bearer("acknowledge")
    )
    assert (status, answer["detail"][0]["loc"]) == (422, ["body", "by"])
    status, answer = call(url + f"/v1/alerts/{alert['id']}/ack", note, bearer("acknowledge"))
    assert status == 200, answer
    assert (answer["status"], answer["acknowledged_by"], answer["note"]) == (
        "acknowledged",
        "Ana Risk",
        "client called",
    )
    assert call(url + "/v1/alerts/999999/ack", note) == (404, {"detail": "no alert 999999"})
    acknowledged = call(url + "/v1/alerts?status=acknowledged")[1]["alerts"]
    assert [a["id"] for a in acknowledged] == [alert["id"]]


def test_text_no_store_can_hold_is_a_422_that_names_it(service_with_memory):
    url = service_with_memory.url
    status, answer = call(url + "/v1/facilities/F%00X/history")
    assert status == 422
    assert "NUL character" in answer["detail"][0]["msg"]
    for body in ('{"note": "\\ud800"}', '{"\\ud800": 1}', '{"note": "a\\u0000b"}'):
        status, raw = send(url + "/v1/alerts/1/ack", body.encode())
        assert status == 422, body
        assert b"which no store can hold" in raw
    row = records(1)[0] | {"facility_id": "F\x00"}
    status, answer = call(url + "/v1/score", {"records": [row]})
    assert (status, "NUL character" in answer["detail"]) == (422, True)


def test_reads_of_client_data_are_logged_with_their_holder(service_with_memory):
    url = service_with_memory.url
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    assert call(url + "/v1/facilities/F0/history", headers=bearer("read"))[0] == 200
    assert call(url + "/v1/alerts?status=open&limit=5", headers=bearer("acknowledge"))[0] == 200
    assert call(url + "/v1/alerts", headers=ANONYMOUS)[0] == 401  # refused: nothing was read
    logged = access_entries(connect(service_with_memory.state_url), limit=10)
    assert [(e["holder"], e["action"], e["subject"]) for e in logged] == [
        ("Ana Risk", "alerts", "status=open limit=5"),
        ("auditor", "history", "F0"),
    ]
    assert logged[1]["rows"] == 2 + 1 + 2  # two decisions, one alert, two alert events
    assert all(entry["at"].replace(tzinfo=dt.UTC) >= before for entry in logged)


#: Every route with a body it accepts, the scope it needs, and the answer of its holder.
ROUTES = [
    ("/v1/score", "score", lambda: {"records": records(1)}, 200),
    ("/v1/alerts", "read", None, 200),
    ("/v1/facilities/F0/history", "read", None, 200),
    ("/v1/alerts/1/ack", "acknowledge", lambda: {"note": "seen"}, 200),
    ("/admin/reload", "admin", lambda: {}, 200),
]


def test_every_route_without_a_credential_with_another_scope_and_with_its_own(service_with_memory):
    # every route on one server: starting one per route cost more than all the calls
    for path, scope, body, expected in ROUTES:
        url = service_with_memory.url + path
        payload = body() if body else None
        assert call(url, payload, ANONYMOUS)[0] == 401, path
        assert call(url, payload, {"Authorization": "Bearer crm_nobody"})[0] == 401, path
        others = [name for name, (_, scopes, _) in CREDENTIALS.items() if scope not in scopes]
        for other in others:
            status, answer = call(url, payload, bearer(other))
            assert status == 403, (path, other, answer)
            assert f"lacks the {scope!r} scope" in answer["detail"], path
        status, answer = call(url, payload, bearer(scope))
        assert status == expected, (path, answer)
    for public in ("/health", "/ready", "/version"):
        assert call(service_with_memory.url + public, headers=ANONYMOUS)[0] == 200
