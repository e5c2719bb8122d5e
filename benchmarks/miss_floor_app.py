"""The floor of a cache miss on this machine (``benchmarks/miss_floor.py``): a bare Flask route at
the lookup's path that answers a number it has seen from a dict, and asks the CRM for any other in
the request thread, with the HTTP client ``FLOOR_CLIENT`` names:

- ``http.client``: one kept-alive ``http.client`` connection per thread, nothing else (the floor);
- ``urllib3``: a ``urllib3.PoolManager`` shared by the threads, ``request`` (the pool ``requests``
  is built on, without ``requests``);
- ``requests``: a ``requests.Session`` shared by the threads, ``session.get`` (what most Flask
  services do);
- ``edge``: the middleware's own SwitchTransact client (``middleware/upstreams``), as the lookup
  service calls it, with none of the service, the cache or the request's Flask-free path around it.

The answer is ``{"cached": true|false}``: all ``benchmarks.lookup.miss_latency`` reads.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from flask import Flask, Response, request

from middleware.upstreams.switchtransact import SwitchTransactClient

app = Flask(__name__)
CRM_URL = os.environ["CTI_CRM_URL"]
CLIENT = os.environ.get("FLOOR_CLIENT", "http.client")
_crm = urlsplit(CRM_URL)
_seen: dict[str, object] = {}
_local = threading.local()
_pool = urllib3.PoolManager(maxsize=8)
_session = requests.Session()
_edge = SwitchTransactClient(CRM_URL, "bench-crm-key", timeout=10)


def _connection() -> http.client.HTTPConnection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = http.client.HTTPConnection(
            _crm.hostname, _crm.port, timeout=10
        )
    return connection


def _ask(phone: str):
    if CLIENT == "edge":
        return _edge.record_by_phone(phone)
    if CLIENT == "urllib3":
        answer = _pool.request(
            "GET", f"{CRM_URL}/calls/record", fields={"phone": phone}, timeout=10, retries=False
        )
        return json.loads(answer.data)
    if CLIENT == "requests":
        answer = _session.get(f"{CRM_URL}/calls/record", params={"phone": phone}, timeout=10)
        return answer.json()
    connection = _connection()
    connection.request("GET", "/calls/record?" + urlencode({"phone": phone}))
    return json.loads(connection.getresponse().read())


@app.get("/api/v1/contacts/lookup")
def lookup():
    phone = request.args["phone"]
    cached = phone in _seen
    if not cached:
        _seen[phone] = _ask(phone)
    return Response(json.dumps({"cached": cached}), mimetype="application/json")
