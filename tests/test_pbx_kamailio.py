"""A real PBX edge: Kamailio (docs/pbx/kamailio.cfg as documented) relays a caller's INVITE to the
agent's phone with the From display name taken from our plain-text lookup, served by a real HTTP
server of the app, with a fake SwitchTransact over HTTP."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import pytest
from werkzeug.serving import make_server

from devtools.processes import free_port

from .fakeserver import Answer, FakeServer
from .kamailio import kamailio_proxy, missing
from .pbx_key import PBX_KEY, PBX_KEY_ENV
from .rawserver import RawServer
from .sip import Caller, Sink, display_name
from .test_caller_lookup import CRM, JAMES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]

CARRIER_NAME = "Carrier Name"
JAMES_NAME = "James May (My Company name)"
TEXT = "text/plain; charset=utf-8"
UNKNOWN = "+27731234567"
EVIL = {
    **JAMES,
    "firstname": 'Zoë "${x}";',
    "lastname": "Müller\r\nVia: SIP/2.0/UDP evil",
    "company": None,
}
EVIL_NUMBER = "+27741234567"


def crm_answer(seen):
    """James for his number, the evil name for its number, nobody else."""
    phone = seen.query.get("phone")
    if phone in ("+27721234567", "0721234567"):
        return Answer(200, {"status": True, "contact": JAMES})
    if phone == EVIL_NUMBER:
        return Answer(200, {"status": True, "contact": EVIL})
    return Answer(200, {"status": False})


@contextlib.contextmanager
def serving(app):
    """The app on a real threaded HTTP server (werkzeug's) on a free port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def lookup_url(base: str) -> str:
    return f"{base}/api/v1/contacts/lookup?format=text&api_key={PBX_KEY}"


class Pbx:
    def __init__(self, port: int, sink: Sink, caller: Caller):
        self.port, self.sink, self.caller = port, sink, caller

    def ring(self, user: str):
        """The INVITE the agent's phone gets when ``user`` calls (and the call ended)."""
        call_id, _ = self.caller.invite(user, CARRIER_NAME)
        invite = self.sink.wait(call_id)
        assert self.caller.finish(call_id) == 486
        return invite


@pytest.fixture(autouse=True)
def quiet_access_log():
    """werkzeug's access line holds the query string, and so the PBX's key."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def pbx_with(make_app):
    """``pbx_with(**env)``: a Kamailio naming callers through our app built with ``env``."""
    with contextlib.ExitStack() as stack:

        def start(
            *, timeout: int = 2, url: str | None = None, whole_url: bool = False, **env
        ) -> Pbx:
            if url is None:
                crm = stack.enter_context(FakeServer(crm_answer))
                app = make_app(**{**CRM, "CTI_CRM_URL": crm.url, **PBX_KEY_ENV, **env})
                url = lookup_url(stack.enter_context(serving(app)))
            port = stack.enter_context(kamailio_proxy(url, timeout=timeout, whole_url=whole_url))
            sink = stack.enter_context(Sink())
            return Pbx(port, sink, stack.enter_context(Caller(port, sink.port)))

        yield start


@pytest.mark.parametrize("user", ["+27721234567", "0721234567", "27721234567"])
def test_a_known_caller_gets_the_contract_name(pbx_with, user):
    invite = pbx_with().ring(user)

    assert display_name(invite.one("From")) == "James May (My Company name)"
    assert f"<sip:{user}@carrier.example>;tag=caller" in invite.one("From")


def test_each_kamailio_process_keeps_its_connection_to_the_middleware(pbx_with):
    # werkzeug's server closes every connection: a keep-alive server stands for gunicorn here
    with RawServer("keepalive", JAMES_NAME.encode(), content_type=TEXT) as middleware:
        pbx = pbx_with(url=lookup_url(middleware.url))
        names = [display_name(pbx.ring("+27721234567").one("From")) for _ in range(8)]

    assert names == [JAMES_NAME] * 8
    assert middleware.received == 8
    # at most one connection per Kamailio process (children=2); http_client_query opened eight
    assert 1 <= middleware.connections <= 2


def test_a_kept_connection_the_middleware_has_closed_is_opened_again(pbx_with):
    names = []
    with RawServer("idle_close", JAMES_NAME.encode(), content_type=TEXT) as middleware:
        pbx = pbx_with(url=lookup_url(middleware.url))
        for count in range(1, 5):  # over two processes, at least one reuses a closed connection
            names.append(display_name(pbx.ring("+27721234567").one("From")))
            middleware.wait_closed(count)

    assert names == [JAMES_NAME] * 4
    assert middleware.received == middleware.connections == 4


def test_a_command_line_of_the_whole_url_form_still_names_callers(pbx_with):
    # CTI_LOOKUP alone, the whole URL, as this config took it before CTI_SERVER
    with RawServer("keepalive", JAMES_NAME.encode(), content_type=TEXT) as middleware:
        pbx = pbx_with(url=lookup_url(middleware.url), whole_url=True)
        names = [display_name(pbx.ring("+27721234567").one("From")) for _ in range(3)]

    assert names == [JAMES_NAME] * 3
    assert middleware.received == 3
    assert middleware.connections == 3  # http_client_query: a connection per lookup


def test_an_unknown_caller_keeps_the_carrier_name(pbx_with):
    invite = pbx_with().ring(UNKNOWN)

    assert display_name(invite.one("From")) == CARRIER_NAME


def test_a_crm_that_is_down_keeps_the_carrier_name(pbx_with):
    pbx = pbx_with(CTI_CRM_URL=f"http://127.0.0.1:{free_port()}")

    assert display_name(pbx.ring("+27721234567").one("From")) == CARRIER_NAME


def test_a_middleware_that_does_not_answer_keeps_the_carrier_name_within_the_timeout(pbx_with):
    with FakeServer(lambda seen: Answer(hang=True)) as silent:
        pbx = pbx_with(url=lookup_url(silent.url), timeout=1)
        started = time.monotonic()
        invite = pbx.ring("+27721234567")
        elapsed = time.monotonic() - started

    assert display_name(invite.one("From")) == CARRIER_NAME
    assert len(silent.seen) == 1
    assert elapsed < 1 + 2  # the PBX's one-second bound, with room for a loaded machine


def test_a_hostile_crm_name_gives_one_well_formed_from_header(pbx_with):
    invite = pbx_with().ring(EVIL_NUMBER)

    assert len(invite.all("From")) == 1
    assert display_name(invite.one("From")) == "Zoë x} Müller Via: SIP/2.0/UDP evil"
    assert len(invite.all("Via")) == 2  # Kamailio's and the caller's, nothing injected
    assert [name for name, _ in invite.headers if name.lower() == "via"] == ["Via", "Via"]


def test_display_ascii_gives_an_ascii_from_header(pbx_with):
    pbx = pbx_with(CTI_DISPLAY_ASCII="true")

    hostile = pbx.ring(EVIL_NUMBER).one("From")
    assert display_name(hostile) == "Zoe x} Muller Via: SIP/2.0/UDP evil"
    assert hostile.isascii()
    assert display_name(pbx.ring("0721234567").one("From")) == "James May (My Company name)"
