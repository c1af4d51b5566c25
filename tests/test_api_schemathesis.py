"""Schemathesis against /openapi.json of the running app: no input makes a 5xx, and every response conforms
to the documented schema, status codes and content types. Bounded: a few dozen examples per operation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from alerts.model import AlertAction, AlertEvent, AlertType
from tests.api_harness import ADMIN_TOKEN, ApiServer, make_harness, trip_body

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    h = make_harness(tmp_path_factory.mktemp("schemathesis"))
    h.ctx.trips.put("T-1", __import__("kawal.trips", fromlist=["TripIn"]).TripIn.model_validate(trip_body()))
    h.ctx.alerts.apply(
        AlertEvent(
            action=AlertAction.RAISE,
            type=AlertType.SEAL_BREAK,
            tracker_id="TRK-0001",
            trip_id="T-1",
            crate_id="JBG-KS-0001",
            ts=1_732_065_000.0,
        )
    )
    with ApiServer(h.app) as server:
        yield schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")


# The live stream never ends by itself; it has its own tests (test_api_stream.py).
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/v1/alerts/stream")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_no_server_errors_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    # Excluded: trips have cross-field rules (arrive_by after depart_after) that JSON Schema cannot state,
    # so some schema-valid bodies are rightly refused with 422.
    # Also excluded: extra query parameters are ignored, as HTTP APIs do, not refused.
    case.validate_response(
        response,
        excluded_checks=[
            schemathesis.checks.positive_data_acceptance,
            schemathesis.checks.negative_data_rejection,
        ],
    )
