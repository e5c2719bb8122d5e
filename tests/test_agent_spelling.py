"""An agent is an extension of the agent directory, or else plain digits compared as a number
(contract section 4, click-to-call): ``07602`` is agent 7602 for the rate limit, the dedupe
window, tokens and the dialer; any other value answers 422 and reaches no upstream."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from middleware.commands.stream_server import StreamServer

from .conftest import API_KEY, CC_AGENT_URL, DIALER_ENV, TOKEN_SECRET

ORIGINATE = f"{CC_AGENT_URL}/api/cc_agent/originate"
KEY = {"X-API-Key": API_KEY}
AGENTS_CSV = (
    "extension,user_id,device_id,first_name,last_name,email\n"
    "alice,301,401,Alice,Ndlovu,alice@example.com\n"
    "07700,302,402,Sipho,Khumalo,sipho@example.com\n"
)
SAME_AGENT = ["07602", "007602", "0000007602"]
NOT_AN_AGENT = ["7602.", "7602@", "7602-", "abc", "76 02", "+7602", "12345678901", "٧٦٠٢", ""]


@pytest.fixture
def pbx(make_app, upstream, tmp_path):
    """cc_agent as the dialer and the agent provider (faked at the HTTP level), a directory with a
    named extension and one written with a leading zero, tokens enabled."""
    counter = iter(range(1, 1000))
    upstream.add_callback(
        "GET",
        ORIGINATE,
        callback=lambda req: (200, {}, f'{{"Success": true, "uuid": "call-{next(counter)}"}}'),
    )
    agents = tmp_path / "agents.csv"
    agents.write_text(AGENTS_CSV)
    return make_app(
        **DIALER_ENV["cc_agent"],
        CTI_AGENTS_FILE=str(agents),
        CTI_TOKEN_SECRET=TOKEN_SECRET,
        CTI_CALL_RATE="1/minute",
    ).test_client()


def call(client, agent, to="0721234567", headers=KEY):
    return client.post("/api/v1/calls", json={"to": to, "agent": agent}, headers=headers)


def dialed_extensions(upstream) -> list[str]:
    """The ``extension`` of each originate the fake PBX received."""
    return [parse_qs(urlsplit(c.request.url).query)["extension"][0] for c in upstream.calls]


def test_every_spelling_of_a_number_is_one_agent_for_the_rate_limit(pbx, upstream):
    assert call(pbx, "7602", to="0721234561").status_code == 201

    for n, spelling in enumerate(SAME_AGENT, start=2):
        refused = call(pbx, spelling, to=f"072123456{n}")
        assert refused.status_code == 429, spelling
        assert refused.get_json()["code"] == "rate_limited"
    link = pbx.get("/click-to-call?to=0721234569&agent=07602", headers=KEY)
    assert link.status_code == 429
    assert dialed_extensions(upstream) == ["7602"]


def test_every_spelling_of_a_number_is_one_agent_for_the_dedupe_window(make_app, upstream):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "only-one"})
    client = make_app(**DIALER_ENV["cc_agent"]).test_client()

    first = call(client, "7602")
    replays = [call(client, spelling) for spelling in SAME_AGENT]
    replays.append(client.get("/click-to-call?to=0721234567&agent=07602", headers=KEY))

    assert first.status_code == 201
    for replay in replays:
        assert replay.status_code == 200
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.get_json() == first.get_json()
    assert len(upstream.calls) == 1


def test_the_dialer_and_the_answer_see_the_number_without_leading_zeros(make_app, upstream):
    upstream.get(ORIGINATE, json={"Success": True, "uuid": "u"})
    client = make_app(**DIALER_ENV["cc_agent"]).test_client()

    answer = call(client, "07602")

    assert answer.status_code == 201
    assert answer.get_json()["agent"] == "7602"
    assert dialed_extensions(upstream) == ["7602"]


@pytest.mark.parametrize("agent", NOT_AN_AGENT)
def test_an_agent_that_is_neither_a_directory_extension_nor_digits_is_422(pbx, upstream, agent):
    answers = [
        call(pbx, agent),
        pbx.get("/click-to-call", query_string={"to": "0721234567", "agent": agent}, headers=KEY),
        pbx.post("/api/v1/calls/c-1/hangup", json={"agent": agent}, headers=KEY),
        pbx.get("/api/v1/journal", query_string={"agent": agent}, headers=KEY),
    ]

    for answer in answers:
        assert answer.status_code == 422, answer.request.path
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["code"] == "validation_error"
        assert "agent" in answer.get_json()["errors"]
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("extension", ["7602.", "7602@", "7602-", "abc", "12345678901"])
def test_an_extension_path_that_is_no_agent_is_422(pbx, upstream, extension):
    answers = [
        pbx.put(f"/api/v1/agents/{extension}/status", json={"status": "available"}, headers=KEY),
        pbx.get(f"/api/v1/agents/{extension}/calls", headers=KEY),
        pbx.post(f"/api/v1/agents/{extension}/token", headers=KEY),
    ]
    stream = pbx.get(f"/api/v1/agents/{extension}/events", headers=KEY, buffered=False)
    stream.close()
    answers.append(stream)

    for answer in answers:
        assert answer.status_code == 422, answer.request.path
        assert answer.get_json()["code"] == "validation_error"
        assert "extension" in answer.get_json()["errors"]
    assert len(upstream.calls) == 0


def test_a_directory_extension_is_accepted_as_the_directory_spells_it(pbx, upstream):
    named = call(pbx, "alice")
    zero = call(pbx, "07700", to="0721234568")
    token = pbx.post("/api/v1/agents/alice/token", headers=KEY)
    journal = pbx.get("/api/v1/journal?agent=alice", headers=KEY)

    assert named.status_code == 201 and named.get_json()["agent"] == "alice"
    assert zero.status_code == 201 and zero.get_json()["agent"] == "07700"
    assert token.status_code == 201 and token.get_json()["agent"] == "alice"
    assert journal.status_code == 200
    assert dialed_extensions(upstream) == ["alice", "07700"]
    assert call(pbx, "Alice", to="0721234569").status_code == 422  # spelled otherwise: no agent


def test_digits_of_a_directory_extension_written_with_zeros_are_that_agent(pbx, upstream):
    assert call(pbx, "7700").status_code == 201
    again = call(pbx, "007700", to="0721234568")

    assert again.status_code == 429  # the same agent as 7700 and 07700: its one call is spent
    assert dialed_extensions(upstream) == ["07700"]


def test_a_token_is_issued_to_the_one_spelling(pbx):
    answer = pbx.post("/api/v1/agents/07602/token", headers=KEY)

    assert answer.status_code == 201
    assert answer.get_json()["agent"] == "7602"


def test_a_token_acts_as_its_agent_in_any_spelling_of_it(pbx, upstream):
    token = pbx.post("/api/v1/agents/7602/token", headers=KEY).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    placed = call(pbx, "07602", headers=bearer)
    link = pbx.get("/click-to-call?to=0721234568&agent=007602", headers=bearer)
    journal = pbx.get("/api/v1/journal?agent=07602", headers=bearer)
    stream = pbx.get("/api/v1/agents/07602/events", headers=bearer, buffered=False)
    other = call(pbx, "07603", to="0721234569", headers=bearer)

    assert placed.status_code == 201 and placed.get_json()["agent"] == "7602"
    assert link.status_code == 429  # the same agent: its one call a minute is spent
    assert journal.status_code == 200
    assert stream.status_code == 200
    stream.close()
    assert other.status_code == 403
    assert dialed_extensions(upstream) == ["7602"]


def test_the_cli_issues_a_token_to_the_one_spelling(make_app, tmp_path):
    agents = tmp_path / "agents.csv"
    agents.write_text(AGENTS_CSV)
    app = make_app(CTI_TOKEN_SECRET=TOKEN_SECRET, CTI_AGENTS_FILE=str(agents))

    def subject(extension: str) -> str:
        result = app.test_cli_runner().invoke(args=["agent", "token", extension])
        assert result.exit_code == 0, result.output
        return jwt.decode(result.output.strip(), TOKEN_SECRET, algorithms=["HS256"])["sub"]

    assert [subject(e) for e in ("07602", "alice", "7700")] == ["7602", "alice", "07700"]
    refused = app.test_cli_runner().invoke(args=["agent", "token", "7602."])
    assert refused.exit_code == 1
    assert refused.output.startswith("error: ")


def test_the_stream_server_takes_a_token_in_any_spelling_of_its_agent(make_app):
    services = make_app(CTI_TOKEN_SECRET=TOKEN_SECRET).extensions["cti"]
    token, _ = services.credentials.issue("7602")

    async def statuses() -> list[int]:
        server = StreamServer(services)
        async with TestClient(TestServer(server.application())) as client:
            answers = []
            for path, credential in [
                ("/api/v1/agents/07602/events", token),
                ("/api/v1/agents/7603/events", token),
                ("/api/v1/agents/7602./events", API_KEY),
            ]:
                answer = await client.get(path, headers={"Authorization": f"Bearer {credential}"})
                answers.append(answer.status)
                answer.close()
            return answers

    assert asyncio.run(statuses()) == [200, 403, 422]
