"""An error's extra fields never replace a problem's own members (nor make it a 500)."""

from __future__ import annotations

import json

from shopkeeper.errors import Conflict
from shopkeeper.problems import problem_for


def test_given_an_extra_named_like_a_member_then_the_member_stays():
    response = problem_for(Conflict("busy", status="received", code="x", title="t", order="SK-1"))

    body = json.loads(response.content)
    assert response.status_code == 409
    assert (body["status"], body["code"], body["detail"]) == (409, "conflict", "busy")
    assert body["order"] == "SK-1"
