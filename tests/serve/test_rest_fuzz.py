"""Property-based API testing: schemathesis against the service's own OpenAPI document.

Generated requests, valid and invalid (wrong types, out-of-range values, missing and
extra fields, odd unicode, dates pandas cannot hold), go to a real server on 127.0.0.1:
none may get a 5xx, and every error answer stays small. A longer run is
``benchmarks/bench_rest_fuzz.py``.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.serve.test_rest import TOKEN, Server

pytestmark = pytest.mark.integration
#: Cases for the scoring operation, and for each of the others.
SCORE_CASES, OTHER_CASES = 2_500, 100
#: The largest error answer allowed: an excerpt of the input at most, never the input.
MAX_ERROR_BYTES = 8_192
calls: dict[str, int] = {}


@pytest.fixture(scope="module")
def fuzzed_service(cli, advisor_store):
    env = {**advisor_store["env"], "CRM_MODES_ADMIN_TOKEN": TOKEN}
    server = Server([cli, "serve", "--host", "127.0.0.1"], env, advisor_store["folder"], "/health")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_service):
    return schemathesis.openapi.from_url(fuzzed_service.url + "/openapi.json")


FUZZ = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True, "database": None}


def check(case) -> None:
    response = case.call(timeout=60)
    label = f"{case.method} {case.path}"
    calls[label] = calls.get(label, 0) + 1
    assert response.status_code < 500, f"{label} answered {response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert len(response.content) <= MAX_ERROR_BYTES, f"{label}: a {len(response.content)}-byte error"
        assert "detail" in response.json()


def fuzz(operation, mode: GenerationMode, examples: int) -> None:
    # schemathesis' own pytest plugin (from_fixture) does not run under pytest 9; hypothesis drives it here.
    @settings(max_examples=examples, **FUZZ)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        check(case)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_request_gets_a_5xx(api_schema, mode):
    for result in api_schema.get_all_operations():
        operation = result.ok()
        scoring = operation.path == "/v1/score"
        if mode is GenerationMode.NEGATIVE and not scoring:
            continue  # no body: nothing to make invalid that HTTP can carry (headers are text)
        fuzz(operation, mode, SCORE_CASES // 2 if scoring else OTHER_CASES // 2)


def test_the_fuzzing_ran_thousands_of_cases():
    assert calls.get("POST /v1/score", 0) >= 2_000, calls
    assert len(calls) == 5, calls  # every operation, including the three without inputs
