"""Property-based API testing: schemathesis against the service's own OpenAPI document.

Generated requests, valid and invalid (wrong types, out-of-range values, missing and
extra fields, odd unicode, dates pandas cannot hold), go to a real server on 127.0.0.1:
none may get a 5xx, and every error answer stays small. Credentials are in play: most cases carry a
token with every scope, the others none, an unknown one, or one without the scope the route needs.
A longer run is ``benchmarks/bench_rest_fuzz.py``.
"""

import pytest

# Installed by `make test` (the `fuzz` extra); `make test-lower` leaves it out (it needs a newer
# rich than the project's lower bound) and runs no integration tests anyway.
schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.serve.credentials import ANONYMOUS, bearer  # noqa: E402
from tests.serve.test_rest import service  # noqa: E402, F401 - the server under test, this module's own

pytestmark = pytest.mark.integration
#: Cases for the scoring operation (valid ones score real records, so they cost the most), and for
#: each of the other operations.
VALID_SCORE_CASES, INVALID_SCORE_CASES, OTHER_CASES = 600, 1_200, 60
#: The largest error answer allowed: an excerpt of the input at most, never the input.
MAX_ERROR_BYTES = 8_192
calls: dict[str, int] = {}


@pytest.fixture(scope="module")
def api_schema(service):  # noqa: F811 - the imported fixture
    return schemathesis.openapi.from_url(service.url + "/openapi.json")


FUZZ = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True, "database": None}


#: The credential of each case in turn: (headers, whether a route that needs a scope must refuse it).
CREDENTIAL_TURNS = [
    (bearer(), None),
    (bearer(), None),
    (bearer(), None),
    (ANONYMOUS, 401),
    ({"Authorization": "Bearer crm_unknown"}, 401),
    (bearer("read"), None),  # 403 where the route needs another scope
]
PUBLIC = {"/health", "/ready", "/version"}


def check(case) -> None:
    label = f"{case.method} {case.path}"
    headers, refused = CREDENTIAL_TURNS[sum(calls.values()) % len(CREDENTIAL_TURNS)]
    calls[label] = calls.get(label, 0) + 1
    response = case.call(timeout=60, headers=headers)
    assert response.status_code < 500, f"{label} answered {response.status_code}: {response.text[:500]}"
    if refused and case.path not in PUBLIC:
        assert response.status_code == refused, (
            f"{label} answered {response.status_code} without a credential"
        )
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
        if scoring:
            fuzz(
                operation, mode, VALID_SCORE_CASES if mode is GenerationMode.POSITIVE else INVALID_SCORE_CASES
            )
        else:
            fuzz(operation, mode, OTHER_CASES)


def test_the_fuzzing_ran_thousands_of_cases():
    assert calls.get("POST /v1/score", 0) >= 1_800, calls
    assert sum(calls.values()) >= 2_000, calls
    assert len(calls) == 8, calls  # every operation of the document, including those without inputs
