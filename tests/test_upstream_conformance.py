"""Every upstream client against real servers that end answers and treat connections as real
servers do (``tests/rawserver.py``: sockets, not ``responses``).

For each behaviour: the outcome the contract names, and how many requests the server read. A
request that may change state reaches the upstream exactly once per attempt; a read that
succeeded, once. The answer that follows a request sent is "in doubt" when it is lost (read
timeout, reset): the caller may not assume nothing happened.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

import pytest
import trustme

from devtools.waiting import wait_until
from middleware.directory import Agent
from middleware.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from middleware.upstreams import CallRequest
from middleware.upstreams.cc_agent import CcAgentClient
from middleware.upstreams.ibizfone import IbizfoneClient
from middleware.upstreams.switchtransact import SwitchTransactClient
from middleware.upstreams.telephony import TelephonyClient
from middleware.upstreams.zain import ZainClient

from .rawserver import RawServer

TIMEOUT = 0.5
AGENT = Agent("6000", user_id="101")
CONTACT = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "+27721234567"}


@dataclass(frozen=True)
class Operation:
    name: str
    make: object  # (url, **edge options) -> client
    call: object  # client -> result
    body: object
    expect: object
    changes_state: bool
    content_type: str = "application/json"


OPERATIONS = [
    Operation(
        "cc_agent.originate",
        lambda url, **kw: CcAgentClient(url, "cc-key", **kw),
        lambda c: c.place_call(CallRequest(dial="27721234567", agent=AGENT)),
        {"Success": True, "uuid": "u-1"},
        "u-1",
        True,
    ),
    Operation(
        "zain.InitiateCustomerCall",
        lambda url, **kw: ZainClient(url, "zain-token", "example.org", **kw),
        lambda c: c.place_call(CallRequest(dial="0721234567", agent=AGENT)),
        {"status": "success", "callSessionId": "z-1"},
        "z-1",
        True,
    ),
    Operation(
        "telephony.dial",
        lambda url, **kw: TelephonyClient(url, "tel-token", **kw),
        lambda c: c.place_call(CallRequest(dial="0721234567", agent=AGENT)),
        {"Success": True, "Data": {"CallId": "t-1"}},
        "t-1",
        True,
    ),
    Operation(
        "ibizfone.ManageAgent",
        lambda url, **kw: IbizfoneClient(url, "ibiz-key", "cust-1", **kw),
        lambda c: c.set_status(AGENT, "available", None),
        "Success",
        {"pause_id": None},
        True,
        "text/plain",
    ),
    Operation(
        "switchtransact.log",
        lambda url, **kw: SwitchTransactClient(url, "crm-key", **kw),
        lambda c: c.log_call({"CallType": "Inbound", "Number": "+27721234567"}),
        {"status": True},
        None,
        True,
    ),
    Operation(
        "switchtransact.record",
        lambda url, **kw: SwitchTransactClient(url, "crm-key", **kw),
        lambda c: c.record_by_phone("+27721234567")["name"],
        {"status": True, "contact": CONTACT},
        "James May",
        False,
    ),
]
IDS = [op.name for op in OPERATIONS]


def _serve(op: Operation, style: str, **kwargs) -> RawServer:
    return RawServer(style, op.body, content_type=op.content_type, **kwargs)


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
@pytest.mark.parametrize(
    "style, calls, connections",
    [
        ("http10", 3, 3),
        ("keepalive", 3, 1),
        ("close", 20, 20),
        ("idle_close", 3, 3),
        ("chunked", 2, 1),
        ("gzip", 2, 1),
    ],
)
def test_ordinary_servers_answer_every_request_once(op, style, calls, connections):
    with _serve(op, style) as server:
        client = op.make(server.url, timeout=TIMEOUT)
        for done in range(1, calls + 1):
            assert op.call(client) == op.expect
            if style == "idle_close":  # the server closes the idle kept-alive connection first
                server.wait_closed(done)
        assert server.received == calls
        assert server.connections == connections


def _assert_sent_once(server: RawServer) -> None:
    """The request reached the server once. The client gave up at its deadline, maybe before the
    server's thread had read the request it sent (on a loaded machine that thread may not have
    run yet): so wait until the server has counted it, then that it counted only it."""
    wait_until(lambda: server.received, 10, "the server never read the request")
    assert server.received == 1
    assert server.connections == 1


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_an_answer_that_never_starts_is_a_timeout_in_doubt(op):
    with _serve(op, "slow_first_byte", pause=TIMEOUT * 3) as server:
        client = op.make(server.url, timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            op.call(client)
        assert time.monotonic() - started < TIMEOUT + 0.5
        assert caught.value.in_doubt
        _assert_sent_once(server)


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_a_dripping_body_is_cut_off_at_the_deadline_in_doubt(op):
    with _serve(op, "drip_body", pause=0.2) as server:
        client = op.make(server.url, timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            op.call(client)
        assert time.monotonic() - started < TIMEOUT + 0.2 + 0.5
        assert caught.value.in_doubt
        _assert_sent_once(server)


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_dripping_headers_within_each_read_timeout_still_give_the_answer_once(op):
    """Per-read timeouts bound a silent upstream; headers that keep coming are read to the end
    (the lookup, which must answer in its budget whatever, bounds its wait from the caller)."""
    with _serve(op, "drip_headers", pause=0.002) as server:
        client = op.make(server.url, timeout=TIMEOUT)
        assert op.call(client) == op.expect
        assert server.received == 1


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_a_reset_after_the_request_is_in_doubt_and_never_resent_when_it_changes_state(op):
    with _serve(op, "reset") as server:
        client = op.make(server.url, timeout=TIMEOUT)
        with pytest.raises(UpstreamError) as caught:
            op.call(client)
        assert caught.value.in_doubt
        assert caught.value.status == 502
        expected = 1 if op.changes_state else 1 + client.read_retries
        assert server.received == expected


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_a_refused_connection_sent_nothing(op):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    client = op.make(f"http://127.0.0.1:{port}", timeout=TIMEOUT)
    with pytest.raises(UpstreamUnavailable) as caught:
        op.call(client)
    assert not caught.value.in_doubt
    assert "refused" in caught.value.detail


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server_context, str(bundle)


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_https_is_verified_against_the_configured_ca_bundle(op, test_ca):
    server_context, bundle = test_ca
    with _serve(op, "keepalive", tls=server_context) as server:
        client = op.make(server.url, timeout=TIMEOUT, ca_bundle=bundle)
        assert op.call(client) == op.expect
        assert op.call(client) == op.expect
        assert server.received == 2
        assert server.connections == 1


@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_https_with_an_unknown_authority_is_refused_before_anything_is_sent(op, test_ca):
    server_context, _ = test_ca
    with _serve(op, "keepalive", tls=server_context) as server:
        client = op.make(server.url, timeout=TIMEOUT)
        with pytest.raises(UpstreamUnavailable) as caught:
            op.call(client)
        assert not caught.value.in_doubt
        assert server.received == 0
