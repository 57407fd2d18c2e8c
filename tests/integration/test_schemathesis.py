"""Schemathesis over /api/openapi.json: every operation, valid and invalid input, as the owner.

The schema is read from the running app (Django's WSGI application, in process, inside the
test's transaction); cases are generated from it, both conforming (positive) and violating it
(negative). For every case: no 5xx, and every error is problem+json with a `code`. Path
parameters are also the real ones (an order's number, a refund's id), so the operations reach
their rules, not only their 404.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from shopkeeper.refunds.services import request_refund
from shopkeeper.wsgi import application
from tests.factories import paid_order, requested_refund, staff, token_for
from tests.integration.schemathesis_report import describe

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 30
CASES: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()
# Schemathesis' own checks besides ours: 2xx bodies match the schema; invalid input is refused.
SCHEMA_CHECKS = [response_schema_conformance, negative_data_rejection]


@pytest.fixture
def wsgi_app() -> Iterator[Any]:
    """The WSGI app, keeping the test's connection open across requests (as Django's test
    client does): a finished request would otherwise close it mid-transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def owner_token() -> str:
    return token_for(staff("owner"))


@pytest.fixture
def real_values(fake_gateway, settings) -> dict[str, list[Any]]:
    """Path parameter values that name real rows: a paid order, and refunds in each state."""
    order = paid_order(fake_gateway, items={"MUG": 5})  # 55.00 USD
    support = staff("support", "support@shop.example")
    done = requested_refund(order, actor=support, amount="1.00", reason="other")
    waiting = request_refund(  # above support's limit: awaits approval
        order_number=order.number, actor=support, amount="50.00", reason="duplicate"
    )
    return {"number": [order.number], "refund_id": [done.pk, waiting.pk]}


def problems_in(response: Any) -> list[str]:
    """What is wrong with an answer: a server error, or an error that is not problem+json."""
    found = []
    if response.status_code >= 500:
        found.append(f"server error {response.status_code}")
    if response.status_code >= 400:
        content_type = response.headers.get("Content-Type") or response.headers.get("content-type")
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        if not (content_type or "").startswith("application/problem+json"):
            found.append(f"error {response.status_code} as {content_type!r}")
        else:
            body = json.loads(response.content)
            if not body.get("code") or body.get("status") not in (None, response.status_code):
                found.append(f"problem without code/status: {body}")
    return found


def case_strategies(operation: Any, token: str, real: dict[str, list[Any]]) -> Any:
    """Positive and negative cases as the owner; with real path values too where it has any.

    The credentials are given, not generated, so a negative case is negative in what the
    request says, never merely in a token we replaced after the fact.
    """
    given = {"headers": {"Authorization": f"Bearer {token}"}, "cookies": {"sessionid": "none"}}
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE, **given),
        operation.as_strategy(GenerationMode.NEGATIVE, **given),
    ]
    names = [p.name for p in operation.iter_parameters() if p.location == "path"]
    if names and all(name in real for name in names):
        for values in itertools.product(*(real[name] for name in names)):
            path = dict(zip(names, values, strict=True))
            strategies.append(
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path, **given)
            )
    return st.one_of(strategies)


def exercise(operation: Any, token: str, real: dict[str, list[Any]]) -> dict[str, str]:
    """Run one operation's cases; the failures found (one line each) with a case that shows it,
    in full (schemathesis_report.describe)."""
    failures: dict[str, str] = {}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategies(operation, token, real))
    def run(case: Any) -> None:
        CASES[operation.label] += 1
        response = case.call()
        STATUSES[f"{response.status_code // 100}xx"] += 1
        found = problems_in(response)
        try:
            case.validate_response(response, checks=SCHEMA_CHECKS)
        except Exception as error:  # schemathesis' FailureGroup, one line per failed check
            found += [line for line in str(error).splitlines() if line.strip()][:4]
        for problem in found:
            failures.setdefault(
                f"{case.method} {case.formatted_path}: {problem}", describe(case, response)
            )

    run()
    return failures


def test_every_api_operation_answers_without_5xx_and_every_error_is_problem_json(
    wsgi_app, owner_token, real_values, capsys
):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    CASES.clear()
    STATUSES.clear()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        failures.update(exercise(operation, owner_token, real_values))

    with capsys.disabled():
        total, statuses = sum(CASES.values()), dict(sorted(STATUSES.items()))
        print(f"\nschemathesis: {total} cases over {len(CASES)} operations, answers {statuses}")
    assert len(operations) >= 13
    assert set(CASES) == {operation.label for operation in operations}
    report = "\n\n".join(f"{line}\n{case}" for line, case in sorted(failures.items()))
    assert not failures, f"{len(failures)} failure(s), each with a case that shows it:\n{report}"


def test_given_a_case_and_its_answer_then_the_report_shows_all_of_it_but_the_token(
    wsgi_app, owner_token
):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    operation = schema["/api/admin/products"]["POST"]
    case = operation.Case(
        headers={"Authorization": f"Bearer {owner_token}", "X-Trace": "t1"},
        query={"probe": "1"},
        body={"sku": "S1", "name": "Mug", "price": " 1.00", "currency": "USD"},
        media_type="application/json",
    )

    report = describe(case, case.call())

    assert owner_token not in report and "Authorization" not in report.split("left out")[1]
    for part in ("POST /api/admin/products", '"probe": "1"', '"X-Trace": "t1"', '" 1.00"'):
        assert part in report, report
    assert "answer: 422" in report and "invalid_amount" in report
