"""The fault proxy itself, over raw HTTP to localstripe: Stripe's idempotency and each fault."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.faults.proxy import Fault, StripeFaultProxy

pytestmark = pytest.mark.localstripe

AUTH = {"Authorization": "Bearer sk_test_fault_proxy"}


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def post(base: str, path: str, form: dict[str, str], key: str | None, timeout: float = 5) -> Answer:
    parsed = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    headers = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    if key is not None:
        headers["Idempotency-Key"] = key
    try:
        connection.request("POST", path, urllib.parse.urlencode(form), headers)
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def customers_named(base: str, email: str) -> list[str]:
    parsed = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
    try:
        connection.request("GET", "/v1/customers?limit=100", headers=AUTH)
        found = json.loads(connection.getresponse().read())["data"]
    finally:
        connection.close()
    return [c["id"] for c in found if c.get("email") == email]


def new_customer(base: str, email: str, key: str | None, timeout: float = 5) -> Answer:
    return post(base, "/v1/customers", {"email": email}, key, timeout)


@pytest.fixture
def proxy(localstripe_url):
    with StripeFaultProxy(localstripe_url, delay=1.0) as proxy:
        yield proxy


@pytest.fixture
def email():
    return f"{uuid.uuid4().hex[:12]}@faults.example"


def test_given_same_key_twice_then_the_first_answer_is_replayed_and_one_object_exists(
    proxy, localstripe_url, email
):
    first = new_customer(proxy.url, email, key="k-replay-" + email)
    second = new_customer(proxy.url, email, key="k-replay-" + email)

    assert first.status == second.status == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert customers_named(localstripe_url, email) == [first.json()["id"]]


def test_given_no_key_then_localstripe_itself_makes_two_objects(proxy, localstripe_url, email):
    """Why the proxy is needed: localstripe ignores Idempotency-Key altogether."""
    new_customer(localstripe_url, email, key="k-direct-" + email)
    new_customer(localstripe_url, email, key="k-direct-" + email)
    assert len(customers_named(localstripe_url, email)) == 2


def test_given_same_key_with_other_parameters_then_400_idempotency_error(proxy, email):
    new_customer(proxy.url, email, key="k-params-" + email)

    other = new_customer(proxy.url, "other-" + email, key="k-params-" + email)

    assert other.status == 400
    assert other.json()["error"]["type"] == "idempotency_error"


@pytest.mark.parametrize(("fault", "status"), [(Fault.ERROR_500, 500), (Fault.RATE_LIMIT, 429)])
def test_given_refused_before_forwarding_then_nothing_made_or_stored_and_the_retry_goes_through(
    proxy, localstripe_url, email, fault, status
):
    proxy.inject(fault, path="/v1/customers")

    refused = new_customer(proxy.url, email, key="k-refused-" + email)
    assert refused.status == status and "error" in refused.json()
    assert customers_named(localstripe_url, email) == []

    retried = new_customer(proxy.url, email, key="k-refused-" + email)
    assert retried.status == 200 and "Idempotent-Replayed" not in retried.headers
    assert customers_named(localstripe_url, email) == [retried.json()["id"]]
    outcomes = [(e.outcome, e.fault) for e in proxy.exchanges]
    assert outcomes == [("not_forwarded", fault), ("forwarded", None)]


def test_given_dropped_response_then_the_object_exists_and_the_retry_replays_it(
    proxy, localstripe_url, email
):
    proxy.inject(Fault.DROP_RESPONSE, path="/v1/customers")

    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        new_customer(proxy.url, email, key="k-drop-" + email)
    (made,) = customers_named(localstripe_url, email)

    retried = new_customer(proxy.url, email, key="k-drop-" + email)
    assert retried.json()["id"] == made and retried.headers.get("Idempotent-Replayed") == "true"


def test_given_delayed_answer_then_the_client_times_out_and_the_retry_replays_it(
    proxy, localstripe_url, email
):
    proxy.inject(Fault.DELAY, path="/v1/customers")

    with pytest.raises(TimeoutError):
        new_customer(proxy.url, email, key="k-delay-" + email, timeout=0.3)
    retried = new_customer(proxy.url, email, key="k-delay-" + email)

    assert retried.json()["id"] == customers_named(localstripe_url, email)[0]
    assert len(customers_named(localstripe_url, email)) == 1


def test_given_a_request_still_running_then_the_same_key_gets_409_and_nothing_is_stored(
    localstripe_url, email
):
    # A slow upstream: a second proxy holds each answer, so the first request is still running.
    with (
        StripeFaultProxy(localstripe_url, delay=1.0) as slow,
        StripeFaultProxy(slow.url) as proxy,
    ):
        slow.inject(Fault.DELAY, path="/v1/customers")
        first: list[Answer] = []
        thread = threading.Thread(
            target=lambda: first.append(new_customer(proxy.url, email, key="k-busy-" + email))
        )
        thread.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if slow.count(fault=Fault.DELAY, path="/v1/customers"):
                break
            time.sleep(0.01)

        busy = new_customer(proxy.url, email, key="k-busy-" + email)
        thread.join(5)

    assert busy.status == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"
    assert first[0].status == 200
    assert customers_named(localstripe_url, email) == [first[0].json()["id"]]


def test_given_refusing_then_connections_are_refused_and_served_again_on_the_same_port(
    proxy, email
):
    with proxy.refusing(), pytest.raises(ConnectionRefusedError):
        new_customer(proxy.url, email, key=None)
    assert new_customer(proxy.url, email, key=None).status == 200


def test_given_its_lifetime_is_over_then_the_proxy_has_stopped_by_itself(localstripe_url, email):
    proxy = StripeFaultProxy(localstripe_url, lifetime=0.1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            new_customer(proxy.url, email, key=None)
        except ConnectionRefusedError:
            return
        except ConnectionResetError:
            pass  # accepted while it was closing (a loaded machine); the next try must be refused
        time.sleep(0.05)
    pytest.fail("the proxy still answers after its lifetime")


def test_given_faults_for_a_path_then_other_paths_pass_untouched(proxy, email):
    proxy.inject(Fault.ERROR_500, times=5, path="/v1/refunds")
    assert new_customer(proxy.url, email, key=None).status == 200
    assert proxy.count(path="/v1/refunds") == 0
    assert proxy.count("forwarded", path="/v1/customers") == 1


def test_given_a_stall_then_requests_are_held_and_on_resume_each_one_is_executed(
    proxy, localstripe_url, email
):
    """A frozen localstripe executes every request that reached it, whatever its key."""
    proxy.inject(Fault.STALL, times=2, path="/v1/customers")

    for _ in range(2):
        with pytest.raises(TimeoutError):
            new_customer(proxy.url, email, key="k-stall-" + email, timeout=0.3)
    assert customers_named(localstripe_url, email) == []  # held, not forwarded
    held = proxy.resume()

    assert held == 2 and proxy.count("forwarded", fault=Fault.STALL, path="/v1/customers") == 2
    assert len(customers_named(localstripe_url, email)) == 2
    after = new_customer(proxy.url, email, key="k-after-" + email)  # no longer stalled
    assert after.status == 200
