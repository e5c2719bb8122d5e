"""Contract section 4: no log line holds a whole phone number. ``python -m middleware.commands.serve`` runs
gunicorn (two workers, its access log on) and the stream server (aiohttp's access log on); every
endpoint and webhook that takes a number is driven through them, in every spelling, valid or not;
then their whole output (stdout and stderr of both) holds each number only masked."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import requests

from devtools.gunicorn import wait_healthy
from devtools.processes import clean_env, free_port, stop_group
from devtools.waiting import wait_until

from .conftest import API_KEY, SECRETS, WEBHOOK_SECRET
from .fakeserver import Answer, FakeServer
from .journal_fakes import call_end, served_env
from .privacy_checks import JAMES_NUMBER
from .sse import SseStream

pytestmark = pytest.mark.slow

KEY = {"X-API-Key": API_KEY}
HOOK = {"X-Webhook-Token": WEBHOOK_SECRET}
JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "072 123 4567"}
#: Every whole spelling of the numbers the run sends (James's, and two invalid ones).
WHOLE = (
    "+27721234567",
    "27721234567",
    "0721234567",
    "072 123 4567",
    "072+123+4567",
    "072%20123%204567",
    "%2B27721234567",
    "072123456789",
    "0721234",
)
#: How the logs write them: the access lines' query strings and paths, the app's own lines.
MASKED = (
    "phone=%2B27*******4567",  # lookup, E.164 URL-encoded
    "phone=******4567",  # national
    "phone=***+***+4567",  # spaces form-encoded
    "phone=*******4567",  # international digits
    "phone=********6789",  # too long to be valid
    "phone=***1234",  # too short to be valid
    "/api/v1/privacy/numbers/%2B27*******4567",
    '/api/v1/privacy/numbers/***%20***%204567 HTTP/1.1" 200 ',  # the status is no number
    "callnumber=******4567",  # the IVR's push
    "to=******4567",  # click-to-call from a CRM link
)


class Crm:
    def __call__(self, seen):
        if seen.path == "/calls/record":
            if seen.query.get("phone") == JAMES_NUMBER:
                return Answer(200, {"status": True, "contact": JAMES})
            return Answer(200, {"status": False})
        if seen.path == "/calls/log":
            return Answer(200, {"status": True})
        return Answer(404, {"status": False, "error": "no such path"})


@contextlib.contextmanager
def served(tmp_path: Path, settings: dict):
    """``python -m middleware.commands.serve`` in ``tmp_path`` (no gunicorn.conf.py: gunicorn as it is,
    with ``GUNICORN_CMD_ARGS``); yields (gunicorn's URL, the stream server's URL, the log)."""
    port, stream_port = free_port(), free_port()
    env = clean_env(
        {
            **settings,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "STREAM_PORT": str(stream_port),
            "STREAM_ACCESS_LOG": "1",
            "GUNICORN_CMD_ARGS": (
                f"--bind 127.0.0.1:{port} --workers 2 --worker-class gthread --threads 8"
                " --access-logfile - --graceful-timeout 2"
            ),
        }
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "middleware.commands.serve"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        web, streams = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stream_port}"
        try:
            wait_healthy("gunicorn", process, web, log_path, 30)
            wait_healthy("stream server", process, streams, log_path, 30)
            yield web, streams, log_path
        finally:
            stop_group(process)


def get(base: str, path_and_query: str, headers=KEY, **kwargs) -> requests.Response:
    """A GET of a raw path and query (the spelling exactly as written)."""
    return requests.get(base + path_and_query, headers=headers, timeout=10, **kwargs)


def drive(web: str, streams: str) -> None:
    """Every endpoint and webhook that takes a number, in every spelling; a few refused."""
    for query in ("%2B27721234567", "0721234567", "072+123+4567", "27721234567"):
        assert get(web, f"/api/v1/contacts/lookup?phone={query}").status_code == 200
    assert get(web, "/api/v1/contacts/lookup?phone=0721234567&format=text").text == "James May"
    for invalid in ("072123456789", "0721234"):
        assert get(web, f"/api/v1/contacts/lookup?phone={invalid}").status_code == 422
    pop = get(web, "/pop?phone=0721234567", allow_redirects=False)
    assert pop.status_code == 200
    stream = SseStream(streams, f"/api/v1/agents/6000/events?api_key={API_KEY}")
    assert "stream-server" in stream.comments.get(timeout=5)  # subscribed before the ring
    ring = call_end(event="call:ring", id="leg-1", dst_user_id=6000, ts=1751710400)
    assert requests.post(f"{web}/api/v1/webhooks/pbx", json=ring, headers=HOOK).status_code == 202
    assert stream.next_event(timeout=5)["data"]["phone"] == JAMES_NUMBER
    form = urllib.parse.urlencode(call_end(id="leg-1"))
    ended = requests.post(
        f"{web}/api/v1/webhooks/pbx",
        data=form,
        headers={**HOOK, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ended.status_code == 202
    ivr = get(
        web,
        "/api/v1/webhooks/ibizfone?calllogid=9&callnumber=0721234567&date=2025-07-05"
        "&time=10:00:00&callstatus=ANSWER",
        headers=HOOK,
    )
    assert ivr.text == "Accepted"
    clicked = requests.post(
        f"{web}/api/v1/calls", json={"to": "072 123 4567", "agent": "6000"}, headers=KEY
    )
    assert clicked.status_code == 201
    assert get(web, "/click-to-call?to=0721234567&agent=6001").status_code == 201
    assert (
        requests.post(
            f"{web}/api/v1/calls", json={"to": "0721234", "agent": "6000"}, headers=KEY
        ).json()["code"]
        == "invalid_number"
    )
    assert get(streams, "/pop?phone=0721234567").status_code == 404  # in aiohttp's access log
    assert get(web, "/api/v1/privacy/numbers/072%20123%204567").json()["journal"]
    erased = requests.delete(f"{web}/api/v1/privacy/numbers/%2B27721234567", headers=KEY)
    assert erased.json()["erased"]["journal"] >= 2


def test_no_log_line_of_gunicorn_or_the_stream_server_holds_a_whole_number(tmp_path):
    with FakeServer(Crm()) as crm:
        settings = served_env(str(tmp_path / "cti.sqlite3"), crm.url, CTI_DIALER="sandbox")
        with served(tmp_path, settings) as (web, streams, log_path):
            drive(web, streams)
            # the last lines: the erasure's, and both access logs' (written after each answer)
            wait_until(
                lambda: "privacy: a number was erased" in log_path.read_text(),
                10,
                "the erasure was not logged",
            )
        logged = log_path.read_text()

    assert '"GET /api/v1/contacts/lookup?phone=' in logged  # gunicorn's access lines are on
    aiohttp_lines = [line for line in logged.splitlines() if '"aiohttp.access"' in line]
    assert any("/pop?phone=******4567" in line for line in aiohttp_lines)  # and aiohttp's
    assert [secret for secret in SECRETS if secret in logged] == []
    assert [spelling for spelling in WHOLE if spelling in logged] == []
    assert [masked for masked in MASKED if masked not in logged] == []
