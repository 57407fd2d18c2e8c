"""Slow clients cannot starve `shopkeeper serve` (issue 7, item 6).

A real server, 2 workers x 4 threads as in production, and 100 connections that each send half
a request and then nothing, held for 10 seconds. Ordinary requests made meanwhile are all
answered; none times out. gunicorn's threaded worker, which gave each of those connections a
thread, answered nobody once 8 of them were held.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.server_process import ServerProcess, shopkeeper_env
from tests.slow_clients import HalfRequests, ordinary_requests_for

SLOW_CLIENTS = 100
HELD_SECONDS = 10


@pytest.mark.django_db(transaction=True)
def test_given_100_half_sent_requests_held_when_others_ask_then_every_one_is_answered(
    tmp_path: Path,
) -> None:
    env = shopkeeper_env(tmp_path)
    serving = ServerProcess(env, tmp_path / "server.log", "--workers", "2", "--threads", "4")
    with serving as server, HalfRequests(server.port, SLOW_CLIENTS) as slow:
        answers = ordinary_requests_for(server.port, seconds=HELD_SECONDS)
        held = slow.still_open()

    assert answers.statuses, "no ordinary request was made"
    assert answers.failures == [], f"{len(answers.failures)} of {len(answers.statuses)} failed"
    assert held == SLOW_CLIENTS, "the slow connections were dropped before the test ended"
