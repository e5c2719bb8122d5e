"""Dedupe window, Idempotency-Key and the per-agent rate limit (in one process; across workers in
test_gunicorn_click_to_call.py)."""

from __future__ import annotations

import threading

import pytest

from devtools.processes import free_port

from .conftest import API_KEY, CC_AGENT_URL, DIALER_ENV
from .fakeserver import Answer, FakeServer
from .rawserver import RawServer

ORIGINATE = f"{CC_AGENT_URL}/api/cc_agent/originate"


@pytest.fixture
def pbx(make_app, upstream):
    counter = iter(range(1, 1000))
    upstream.add_callback(
        "GET",
        ORIGINATE,
        callback=lambda req: (200, {}, f'{{"Success": true, "uuid": "call-{next(counter)}"}}'),
    )
    return make_app(**DIALER_ENV["cc_agent"]).test_client()


def call(client, auth, to="0721234567", agent="6000", headers=None):
    return client.post(
        "/api/v1/calls", json={"to": to, "agent": agent}, headers={**auth, **(headers or {})}
    )


def at_once(app, auth, numbers: list[str]) -> list:
    """One click-to-call to each number, each on a thread of its own, all at once: the answers."""
    results = []
    threads = [
        threading.Thread(target=lambda to=to: results.append(call(app.test_client(), auth, to=to)))
        for to in numbers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_same_agent_and_number_in_any_spelling_within_window_is_replayed(pbx, upstream, auth):
    first = call(pbx, auth, to="072 123 4567")
    second = call(pbx, auth, to="+27 72 123 4567")
    third = call(pbx, auth, to="0027721234567")

    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    for replay in (second, third):
        assert replay.status_code == 200
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.get_json() == first.get_json()
    assert len(upstream.calls) == 1


def test_another_agent_or_number_is_a_new_call(pbx, upstream, auth):
    assert call(pbx, auth).status_code == 201
    assert call(pbx, auth, agent="6001").status_code == 201
    assert call(pbx, auth, to="0721234568").status_code == 201
    assert len(upstream.calls) == 3


def test_after_the_window_the_same_call_is_placed_again(make_app, upstream, auth):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u"})
    client = make_app(**DIALER_ENV["cc_agent"], CTI_DEDUPE_SECONDS="0").test_client()

    assert call(client, auth).status_code == 201
    assert call(client, auth).status_code == 201
    assert len(upstream.calls) == 2


def test_concurrent_duplicates_make_one_upstream_call(make_app, auth):
    with FakeServer(
        lambda seen: Answer(200, {"Success": True, "uuid": "only-one"}, delay=0.3)
    ) as fake:
        app = make_app(**{**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": fake.url})
        results = at_once(app, auth, ["0721234567"] * 10)

    assert fake.count() == 1
    assert sorted(r.status_code for r in results) == [200] * 9 + [201]
    assert {r.get_json()["call_id"] for r in results} == {"only-one"}


def test_concurrent_duplicates_of_a_failed_call_share_its_error(make_app, auth):
    with FakeServer(lambda seen: Answer(500, {"success": False, "msg": "busy"}, delay=0.3)) as fake:
        app = make_app(**{**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": fake.url})
        results = at_once(app, auth, ["0721234567"] * 5)

    assert fake.count() == 1
    assert [r.status_code for r in results] == [502] * 5


def test_idempotency_key_replays_the_first_answer(pbx, upstream, auth):
    key = {"Idempotency-Key": "order-1"}
    first = call(pbx, auth, headers=key)
    again = call(pbx, auth, headers=key)

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(upstream.calls) == 1


def test_idempotency_key_with_another_body_is_a_validation_error(pbx, upstream, auth):
    key = {"Idempotency-Key": "order-2"}
    assert call(pbx, auth, headers=key).status_code == 201

    response = call(pbx, auth, to="0721234999", headers=key)

    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    assert len(upstream.calls) == 1


def test_idempotency_key_is_checked_before_the_dedupe_window(pbx, upstream, auth):
    """A replay by key keeps the first status (201), where a dedupe replay would answer 200."""
    call(pbx, auth, headers={"Idempotency-Key": "k-a"})
    replay = call(pbx, auth, headers={"Idempotency-Key": "k-a"})
    dedupe = call(pbx, auth, headers={"Idempotency-Key": "k-b"})

    assert replay.status_code == 201
    assert dedupe.status_code == 200


def test_idempotency_key_still_running_is_conflict(make_app, auth):
    with FakeServer(lambda seen: Answer(200, {"Success": True, "uuid": "slow"}, delay=0.5)) as fake:
        app = make_app(**{**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": fake.url})
        first = []
        thread = threading.Thread(
            target=lambda: first.append(
                call(app.test_client(), auth, headers={"Idempotency-Key": "slow-1"})
            )
        )
        thread.start()
        while fake.count() == 0:
            threading.Event().wait(0.01)
        second = call(app.test_client(), auth, headers={"Idempotency-Key": "slow-1"})
        thread.join()

    assert second.status_code == 409
    assert second.get_json()["code"] == "conflict"
    assert first[0].status_code == 201


def test_an_error_answer_is_not_remembered_by_idempotency_key(make_app, upstream, auth):
    upstream.get(ORIGINATE, status=500, json={"success": False})
    client = make_app(**DIALER_ENV["cc_agent"]).test_client()
    key = {"Idempotency-Key": "retry-me"}
    assert call(client, auth, headers=key).status_code == 502

    upstream.replace("GET", ORIGINATE, json={"Success": True, "uuid": "ok"})
    response = call(client, auth, headers=key)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers


def test_idempotency_keys_are_scoped_to_the_api_key(make_app, upstream, auth):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u"})
    client = make_app(
        **DIALER_ENV["cc_agent"], CTI_API_KEYS=f"{API_KEY},other-key-123", CTI_DEDUPE_SECONDS="0"
    ).test_client()

    call(client, auth, headers={"Idempotency-Key": "shared"})
    other = client.post(
        "/api/v1/calls",
        json={"to": "0721234999", "agent": "6000"},
        headers={"X-API-Key": "other-key-123", "Idempotency-Key": "shared"},
    )

    assert other.status_code == 201


def test_malformed_idempotency_key_is_a_validation_error(pbx, auth):
    response = call(pbx, auth, headers={"Idempotency-Key": "x" * 300})

    assert response.status_code == 422


def test_rate_limit_refuses_with_retry_after(make_app, upstream, auth):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u"})
    client = make_app(**DIALER_ENV["cc_agent"], CTI_CALL_RATE="3/minute").test_client()

    placed = [call(client, auth, to=f"072123456{i}").status_code for i in range(3)]
    refused = call(client, auth, to="0721234569")

    assert placed == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(upstream.calls) == 3


def test_rate_limit_is_per_agent_and_replays_do_not_count(make_app, upstream, auth):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u"})
    client = make_app(**DIALER_ENV["cc_agent"], CTI_CALL_RATE="2/minute").test_client()

    assert call(client, auth, to="0721234561").status_code == 201
    assert call(client, auth, to="0721234561").status_code == 200  # replay: not counted
    assert call(client, auth, to="0721234562").status_code == 201
    assert call(client, auth, to="0721234563").status_code == 429
    assert call(client, auth, to="0721234563", agent="6001").status_code == 201


def test_rate_limit_holds_for_concurrent_requests(make_app, auth):
    with FakeServer(lambda seen: Answer(200, {"Success": True, "uuid": "u"}, delay=0.1)) as fake:
        app = make_app(
            **{**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": fake.url}, CTI_CALL_RATE="4/minute"
        )
        results = at_once(app, auth, [f"07212345{i:02d}" for i in range(12)])

    assert fake.count() == 4
    assert sorted(r.status_code for r in results) == [201] * 4 + [429] * 8


# CTI_CALL_RATE counts calls placed upstream: a call that never reached the dialer, or that the
# dialer refused, is no call placed; one that may have been placed stays counted.


def test_calls_that_never_reached_the_dialer_do_not_count_against_the_rate(make_app, auth):
    env = {**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": f"http://127.0.0.1:{free_port()}"}
    client = make_app(**env, CTI_CALL_RATE="2/minute", CTI_DEDUPE_SECONDS="0").test_client()

    statuses = [call(client, auth, to=f"07212820{i:02d}").status_code for i in range(4)]

    assert statuses == [503] * 4


def test_calls_the_dialer_refused_do_not_count_against_the_rate(make_app, upstream, auth):
    upstream.get(ORIGINATE, json={"success": False, "msg": "agent busy"})
    upstream.get(ORIGINATE, json={"success": False, "msg": "agent busy"})
    upstream.get(ORIGINATE, json={"success": False, "msg": "agent busy"})
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u1"})
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u2"})
    client = make_app(**DIALER_ENV["cc_agent"], CTI_CALL_RATE="2/minute").test_client()

    statuses = [call(client, auth, to=f"07214000{i:02d}").status_code for i in range(6)]

    assert statuses == [502, 502, 502, 201, 201, 429]
    assert len(upstream.calls) == 5


def test_a_call_that_may_have_been_placed_counts_against_the_rate(make_app, auth):
    with RawServer("reset", {"Success": True, "uuid": "lost"}, pause=3) as dialer:
        env = {**DIALER_ENV["cc_agent"], "CTI_CC_AGENT_URL": dialer.url}
        client = make_app(**env, CTI_CALL_RATE="1/minute").test_client()
        first = call(client, auth, to="0721234561")
        second = call(client, auth, to="0721234562")

    assert first.status_code == 502
    assert "may have been placed" in first.get_json()["detail"]
    assert second.status_code == 429
