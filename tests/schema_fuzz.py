"""Schemathesis over the service's own OpenAPI schema, driven through hypothesis directly
(schemathesis' pytest plugin lags the pytest in use). Shared by the test and bench/fuzz.py."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def _content_type(response) -> str:  # type: ignore[no-untyped-def]
    kind = response.headers.get("content-type") or [""]
    return kind if isinstance(kind, str) else kind[0]


def fuzz(schema, examples: int) -> dict[str, Counter]:  # type: ignore[no-untyped-def]
    """`examples` generated requests per operation; fails on any 5xx, or on an error without
    the OpenAI envelope. Returns the status codes seen, per operation."""
    seen: dict[str, Counter] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        statuses: Counter = Counter()

        @given(case=operation.as_strategy())
        # Derandomized: the same requests every run, so that whether valid ones were among them
        # never depends on the draw (a random run once drew 20 invalid chat requests).
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(timeout=60)
            statuses[response.status_code] += 1  # noqa: B023 check() runs in this iteration; @given forbids defaults
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400 and _content_type(response).startswith("application/json"):
                error = response.json().get("error")
                assert isinstance(error, dict) and error.get("message"), (
                    case.method,
                    case.path,
                    response.status_code,
                    response.text,
                )

        check()
        seen[f"{operation.method.upper()} {operation.path}"] = statuses
    return seen
