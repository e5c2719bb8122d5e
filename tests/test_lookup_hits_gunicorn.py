"""Under gunicorn, a fresh hit answered by the WSGI hit path (a GET) carries what Flask gives the
same hit (a HEAD, which the path leaves to Flask): the same headers in the same order, its
request line, and both are counted."""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import urlsplit

import pytest

from .conftest import API_KEY, CRM_KEY
from .fakeserver import Answer, FakeServer
from .gunicorn_runner import gunicorn, host_env

pytestmark = pytest.mark.slow

JAMES = {"id": "c-1", "firstname": "James", "lastname": "May", "mobilephone": "0721234567"}
LOOKUP = "/api/v1/contacts/lookup?phone=0721234567"


def test_a_hit_under_gunicorn_is_answered_as_flask_answers_it(tmp_path):
    with FakeServer(lambda seen: Answer(200, {"status": True, "contact": JAMES})) as crm:
        env = host_env(
            tmp_path, CTI_CRM="switchtransact", CTI_CRM_URL=crm.url, CTI_CRM_API_KEY=CRM_KEY
        )
        with gunicorn(env, workers=1, threads=2, cwd=tmp_path) as base:
            connection = http.client.HTTPConnection(urlsplit(base).netloc, timeout=10)

            def ask(method, path=LOOKUP, **headers):
                connection.request(method, path, headers={"X-API-Key": API_KEY, **headers})
                answer = connection.getresponse()
                body = answer.read()
                shown = [
                    (k, v) for k, v in answer.getheaders() if k not in ("Date", "X-Request-ID")
                ]
                return answer.status, shown, body, answer.getheader("X-Request-ID")

            miss = ask("GET")
            hit = ask("GET", **{"X-Request-ID": "trace-7"})
            head = ask("HEAD")
            metrics = ask("GET", "/metrics")[2].decode()
            connection.close()
    assert miss[0] == hit[0] == head[0] == 200
    assert hit[1] == head[1]  # the same headers, in the same order
    assert ("Cache-Control", "no-store") in hit[1]
    assert json.loads(hit[2]) == {**json.loads(miss[2]), "cached": True}
    assert hit[3] == "trace-7" and re.fullmatch(r"[0-9a-f]{32}", head[3])
    assert 'cti_lookups_total{result="hit"} 2.0' in metrics  # the GET's and the HEAD's
    route = 'route="/api/v1/contacts/lookup",status="200"'
    assert re.search(rf'cti_http_request_seconds_count\{{method="GET",{route}\}} 2\.0', metrics)
    (log,) = tmp_path.glob("gunicorn-*.log")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (traced,) = [line for line in lines if line.get("request_id") == "trace-7"]
    assert traced["message"] == "GET /api/v1/contacts/lookup 200" and traced["route"] == (
        "/api/v1/contacts/lookup"
    )
