"""The service's memory endpoints, on a real server on 127.0.0.1, over SQLite and the real PostgreSQL."""

import pytest

from crm_modes.state.record import record_scores
from crm_modes.state.store import connect
from tests.serve.test_rest import TOKEN, Server, call
from tests.state.test_store import POLICY, month, scores

pytestmark = pytest.mark.integration


@pytest.fixture
def service_with_memory(cli, advisor_store, state_url, tmp_path):
    for index, codes in enumerate([{"F0": "PD_WATCH", "F1": "DPD_1"}, {"F0": "PD_WARNING"}]):
        path = tmp_path / f"scores-{index}.parquet"
        scores(month(index), codes).to_parquet(path)
        record_scores(connect(state_url), path, POLICY)
    env = {**advisor_store["env"], "CRM_MODES_ADMIN_TOKEN": TOKEN}
    server = Server([cli, "serve", "--host", "127.0.0.1", "--state", state_url], env, tmp_path, "/health")
    yield server
    server.stop()


def test_history_alerts_and_acknowledgement_over_rest(service_with_memory):
    url = service_with_memory.url
    status, history = call(url + "/v1/facilities/F0/history")
    assert status == 200
    assert [row["snapshot_date"] for row in history["decisions"]] == [str(month(0)), str(month(1))]
    assert [event["event"] for event in history["alert_events"]] == ["new", "escalated"]
    status, answer = call(url + "/v1/facilities/NOPE/history")
    assert (status, answer["detail"]) == (404, "facility 'NOPE' was never recorded")

    status, listed = call(url + "/v1/alerts?status=open")
    assert status == 200
    assert {(a["facility_id"], a["topic"], a["status"]) for a in listed["alerts"]} == {
        ("F0", "PD", "escalated"),
        ("F1", "DPD", "new"),  # cleared once: still open
    }
    assert call(url + "/v1/alerts?status=closed")[0] == 422
    alert = next(a for a in listed["alerts"] if a["facility_id"] == "F0")

    ack = {"by": "ana", "note": "client called"}
    status, answer = call(url + f"/v1/alerts/{alert['id']}/ack", ack)
    assert (status, answer["detail"]) == (401, "missing or wrong token: send 'Authorization: Bearer <token>'")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    status, answer = call(url + f"/v1/alerts/{alert['id']}/ack", ack, bearer)
    assert status == 200, answer
    assert (answer["status"], answer["acknowledged_by"], answer["note"]) == (
        "acknowledged",
        "ana",
        "client called",
    )
    assert call(url + "/v1/alerts/999999/ack", ack, bearer) == (404, {"detail": "no alert 999999"})
    assert call(url + f"/v1/alerts/{alert['id']}/ack", {"by": ""}, bearer)[0] == 422
    acknowledged = call(url + "/v1/alerts?status=acknowledged")[1]["alerts"]
    assert [a["id"] for a in acknowledged] == [alert["id"]]
