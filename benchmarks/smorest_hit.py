"""The cache-hit caller lookup declared our way (``describe``) against the flask-smorest way, in one
run, in-process: what each costs the framework per request.

Five endpoints answer ``GET ...?phone=0721234567`` with the same JSON body (checked first, byte
for byte for the three lookups, as parsed JSON for the floor):

1. ``bare``: a bare Flask endpoint (``benchmarks/bare_app.py``), the floor;
2. ``ours``: ``GET /api/v1/contacts/lookup`` as it is (``create_app``, sandbox CRM, cache warmed):
   ``describe`` loads the query (remembered by its raw query string, ``memo_query``) and the
   view answers a hit's body made once per cache entry (``middleware/lookup/memo.py``);
3. ``ours-no-memo``: the same ``describe`` declaration and view without ``memo_query`` (the query
   loaded by the schema on every request, as smorest does), beside it on the same app;
4. ``smorest-dump``: the same lookup on the same app and services, declared the flask-smorest
   way (``@blp.arguments(LookupQuerySchema, location="query")``, ``@blp.response(200,
   LookupSchema)``, the same ``@allow``), the view returning a dict that smorest dumps with
   ``LookupSchema`` and ``jsonify``s on every request (the idiomatic way);
5. ``smorest-response``: the same declaration around our own view body (``inspect.unwrap`` of
   the lookup view), which returns its prepared ``Response``; smorest passes a ``Response``
   through unchanged (its ``Blueprint.response`` docstring: "If the decorated function returns a
   ``Response`` object, the ``schema`` and ``status_code`` parameters are only used to document
   the resource"). So ``smorest-response - ours`` is smorest's argument parsing (webargs, a
   schema load each request) and wrappers, of which ``ours-no-memo - ours`` is what the query
   memo saves, and ``smorest-dump - smorest-response`` the dump.

Each request calls the WSGI app directly with a prepared environ (no sockets, no test client), so
only the framework's and the view's work is timed; the app's request log line is still formatted
and written (to /dev/null), as in a deployment. Rounds go through the five, then back
(A B C D E E D C B A), so a drift in the machine's speed weighs on all alike; each figure is the
median of the rounds, each ratio the median of the rounds' ratios. Wall time and this thread's CPU
time are both printed (the CPU time is less disturbed by other processes on a shared machine).

    .venv/bin/python -m benchmarks.smorest_hit [--requests 500] [--rounds 31] [--warmup 2000]
        [--gunicorn SECONDS [--gunicorn-rounds 3] [--clients 4]]

``--gunicorn`` then serves the same app under gunicorn (2 workers x 4 threads, as
``benchmarks.lookup``) and loads bare, ours and the two smorest endpoints in alternating rounds
from client processes: throughput as a share of bare's, and the workers' CPU per request.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from flask import Blueprint, current_app
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from benchmarks import bare_app
from benchmarks.harness import Gunicorn, clean_env
from benchmarks.lookup import API_KEY, throughput
from middleware import create_app
from middleware.api import contacts
from middleware.auth import ANY_AGENT, allow
from middleware.lookup.text_form import LOOKUP_PATH, asks_for_text
from schemas.contacts import LookupQuerySchema, LookupSchema

KEY = API_KEY  # the key ``benchmarks.lookup``'s load clients present (--gunicorn)
PHONE = "0721234567"
SMOREST_DUMP = "/smorest/lookup-dump"
SMOREST_RESPONSE = "/smorest/lookup-response"
NO_MEMO = "/bench/lookup-no-memo"
VARIANTS = ("bare", "ours", "ours-no-memo", "smorest-dump", "smorest-response")
LABELS = {
    "bare": "bare Flask endpoint",
    "ours": "ours (describe)",
    "ours-no-memo": "ours, no query memo",
    "smorest-dump": "smorest, dump per request",
    "smorest-response": "smorest, prepared Response",
}


# the apps ----------------------------------------------------------------------------------------


def lookup_app(database: Path, *, quiet: bool = True):
    """Our app as ``create_app`` builds it (sandbox CRM and dialer), with the two smorest
    declarations of the lookup and the unmemoised one registered beside ours on the same app and
    services. ``quiet``: the request log lines are written to /dev/null (in-process)."""
    config = {name: None for name in os.environ if name.startswith("CTI_")}  # hermetic
    config.update(
        {
            "CTI_API_KEYS": KEY,
            "CTI_WEBHOOK_SECRET": "bench-webhook-secret",
            "CTI_CRM": "sandbox",
            "CTI_DIALER": "sandbox",
            "CTI_DATABASE": str(database),
            "CTI_CACHE_TTL": 86400,  # every request of the run a fresh hit
        }
    )
    app = create_app(config)
    # What is compared is each declaration's cost through Flask: without the lookup's WSGI hit
    # path (``middleware/api/lookup_hits.py``), which answers a hit before any declaration runs.
    app.wsgi_app = app.wsgi_app.wsgi_app
    app.config["JOURNAL_BACKGROUND"] = False  # no deliverer thread beside the timed one
    if quiet:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    app.config.update(API_TITLE="CTI middleware", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    api.register_blueprint(smorest_lookups(app.extensions["cti"].settings.default_region))
    app.register_blueprint(unmemoised_lookup())
    return app


def gunicorn_app():
    """``gunicorn 'benchmarks.smorest_hit:gunicorn_app()'``: the same app in each worker, its
    store ``CTI_DATABASE``."""
    return lookup_app(Path(os.environ["CTI_DATABASE"]), quiet=False)


def unmemoised_lookup() -> Blueprint:
    """Our lookup declared as ours is, but without ``memo_query``: the query is loaded by the
    schema on every request, as smorest's ``arguments`` does."""
    bp = Blueprint("bench_lookup", __name__)
    operation = dataclasses.replace(contacts.LOOKUP, memo_query=None)
    bp.add_url_rule(
        NO_MEMO,
        "lookup_no_memo",
        allow(lookup=True, agent=ANY_AGENT)(operation(inspect.unwrap(contacts.lookup))),
    )
    return bp


def smorest_lookups(region: str) -> SmorestBlueprint:
    """The lookup declared the flask-smorest way, twice (see the module docstring)."""
    blp = SmorestBlueprint("smorest_lookup", __name__, url_prefix="/smorest")
    query_schema = LookupQuerySchema(region=region)
    our_view = inspect.unwrap(contacts.lookup)  # the view body under ``@LOOKUP``

    @blp.route("/lookup-dump")
    @allow(lookup=True, agent=ANY_AGENT)
    @blp.arguments(query_schema, location="query")
    @blp.response(200, LookupSchema)
    def lookup_dump(query):
        result = contacts.find(query)
        if asks_for_text(query.get("format")):  # the same branch as ours, never taken here
            return Response(status=204)
        return contacts.answer(result, current_app.extensions["cti"].lookup)

    @blp.route("/lookup-response")
    @allow(lookup=True, agent=ANY_AGENT)
    @blp.arguments(query_schema, location="query")
    @blp.response(200, LookupSchema)
    def lookup_response(query):
        return our_view(query)

    return blp


# timing ------------------------------------------------------------------------------------------


class Endpoint:
    """One endpoint of a WSGI app, called directly with a prepared environ."""

    def __init__(self, app, path: str, headers: dict):
        self.app = app
        self.environ = EnvironBuilder(
            path=path, query_string={"phone": PHONE}, headers=headers
        ).get_environ()
        self.status = None

    def _start_response(self, status, headers, exc_info=None):
        self.status = status

    def get(self) -> tuple[str, bytes]:
        answer = self.app(dict(self.environ), self._start_response)
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        return self.status, body

    def timed(self, requests: int) -> tuple[float, float]:
        """(wall, CPU) microseconds per request over ``requests`` requests."""
        app, environ, start_response = self.app, self.environ, self._start_response
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(requests):
            answer = app(dict(environ), start_response)
            for _chunk in answer:
                pass
            if hasattr(answer, "close"):  # optional for a WSGI answer (PEP 3333)
                answer.close()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        if self.status != "200 OK":
            raise SystemExit(f"{self.environ['PATH_INFO']} answered {self.status}")
        return wall / requests * 1e6, cpu / requests * 1e6


def check_same_answers(endpoints: dict[str, Endpoint]) -> dict:
    """Each endpoint answers 200; the three lookups the same bytes, a fresh cache hit; the floor
    the same JSON. The parsed body."""
    answers = {}
    for name, endpoint in endpoints.items():
        status, body = endpoint.get()
        if status != "200 OK":
            raise SystemExit(f"{name} answered {status}: {body[:200]!r}")
        answers[name] = body
    ours = answers["ours"]
    parsed = json.loads(ours)
    if not (parsed["found"] and parsed["cached"] and not parsed["stale"]):
        raise SystemExit(f"ours is not a fresh cache hit: {parsed}")
    for name in ("ours-no-memo", "smorest-dump", "smorest-response"):
        if answers[name] != ours:
            raise SystemExit(f"{name} answers other bytes than ours:\n{answers[name]!r}\n{ours!r}")
    if json.loads(answers["bare"]) != parsed:
        raise SystemExit(f"the bare endpoint answers other JSON:\n{answers['bare']!r}\n{ours!r}")
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Many short rounds: a burst of another process's load spoils a few rounds, not the median.
    parser.add_argument("--requests", type=int, default=500, help="per endpoint, round and half")
    parser.add_argument("--rounds", type=int, default=31, help="rounds of the five and back")
    parser.add_argument("--warmup", type=int, default=2000, help="requests per endpoint first")
    parser.add_argument(
        "--gunicorn", type=float, default=0, help="then under gunicorn: seconds per endpoint/round"
    )
    parser.add_argument("--gunicorn-rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="client processes (--gunicorn)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        app = lookup_app(Path(tmp) / "cti.sqlite3")
        headers = {"X-API-Key": KEY}
        endpoints = {
            "bare": Endpoint(bare_app.app, "/bare", {}),
            "ours": Endpoint(app, LOOKUP_PATH, headers),
            "ours-no-memo": Endpoint(app, NO_MEMO, headers),
            "smorest-dump": Endpoint(app, SMOREST_DUMP, headers),
            "smorest-response": Endpoint(app, SMOREST_RESPONSE, headers),
        }
        endpoints["ours"].get()  # the miss that fills the cache
        check_same_answers(endpoints)
        for endpoint in endpoints.values():
            endpoint.timed(options.warmup)
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
        for _ in range(options.rounds):
            halves = {name: [] for name in VARIANTS}
            for name in (*VARIANTS, *reversed(VARIANTS)):
                halves[name].append(endpoints[name].timed(options.requests))
            for name, (first, second) in halves.items():
                rounds[name].append(((first[0] + second[0]) / 2, (first[1] + second[1]) / 2))
        check_same_answers(endpoints)  # still fresh hits, still the same answers

    wall = {name: statistics.median(w for w, _ in rounds[name]) for name in VARIANTS}
    cpu = {name: statistics.median(c for _, c in rounds[name]) for name in VARIANTS}
    print(
        f"in-process WSGI, cache-hit lookup ?phone={PHONE}, {options.rounds} rounds of "
        f"{', '.join(VARIANTS)} and back, {options.requests} requests each"
    )
    for name in VARIANTS:
        print(
            f"{LABELS[name] + ':':28} {wall[name]:7.1f} us/request wall, {cpu[name]:7.1f} us CPU  "
            f"(rounds: wall {_range(w for w, _ in rounds[name])}, "
            f"CPU {_range(c for _, c in rounds[name])})"
        )
    for name, base in (
        ("smorest-dump", "ours"),
        ("smorest-response", "ours"),
        ("smorest-response", "ours-no-memo"),
    ):
        ratios = [s[0] / o[0] for s, o in zip(rounds[name], rounds[base], strict=True)]
        cpu_ratios = [s[1] / o[1] for s, o in zip(rounds[name], rounds[base], strict=True)]
        print(
            f"ratio {name}/{base}: {statistics.median(ratios):5.2f} wall, "
            f"{statistics.median(cpu_ratios):5.2f} CPU  median of the rounds' ratios "
            f"(wall {_range(ratios, '.2f')}, CPU {_range(cpu_ratios, '.2f')})"
        )
    for unit, figures in (("wall", wall), ("CPU", cpu)):
        above = {name: figures[name] - figures["bare"] for name in VARIANTS}
        print(
            f"above the floor ({unit}): "
            + ", ".join(f"{name} {above[name]:.1f} us" for name in VARIANTS[1:])
        )
        print(
            f"where smorest's extra goes ({unit}): the query memo (ours-no-memo - ours) "
            f"{figures['ours-no-memo'] - figures['ours']:.1f} us, webargs over describe's load "
            f"(smorest-response - ours-no-memo) "
            f"{figures['smorest-response'] - figures['ours-no-memo']:.1f} us, dump and jsonify "
            f"(smorest-dump - smorest-response) "
            f"{figures['smorest-dump'] - figures['smorest-response']:.1f} us"
        )
    if options.gunicorn:
        gunicorn_rounds(options)


def gunicorn_rounds(options) -> None:
    """The same endpoints (but ``ours-no-memo``) under gunicorn, 2 workers x 4 threads as
    ``benchmarks.lookup`` runs them, loaded by its client processes over keep-alive connections:
    throughput and the workers' CPU per request, alternating rounds."""
    names = ("bare", "ours", "smorest-dump", "smorest-response")
    query = f"?phone={PHONE}"
    sizes = {"workers": 2, "threads": 4}
    seconds, clients = options.gunicorn, options.clients
    with tempfile.TemporaryDirectory() as tmp:
        env = clean_env({"CTI_DATABASE": str(Path(tmp) / "cti.sqlite3")})
        with (
            Gunicorn(env, app="benchmarks.smorest_hit:gunicorn_app()", **sizes) as cti,
            Gunicorn(clean_env(), app="benchmarks.bare_app:app", **sizes) as bare,
            multiprocessing.Pool(clients) as pool,
        ):
            cti.wait_ready(LOOKUP_PATH + query, {"X-API-Key": KEY})
            bare.wait_ready("/bare")
            targets = {
                "bare": (bare, "/bare"),
                "ours": (cti, LOOKUP_PATH + query),
                "smorest-dump": (cti, SMOREST_DUMP + query),
                "smorest-response": (cti, SMOREST_RESPONSE + query),
            }
            for server, path in targets.values():  # each worker's miss, then warm
                throughput(pool, server.port, path, 0.5, clients, server.pid)
            rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            for _ in range(options.gunicorn_rounds):
                halves = {name: [] for name in names}
                for name in (*names, *reversed(names)):
                    server, path = targets[name]
                    halves[name].append(
                        throughput(pool, server.port, path, seconds / 2, clients, server.pid)
                    )
                for name, (first, second) in halves.items():
                    rounds[name].append(((first[0] + second[0]) / 2, (first[1] + second[1]) / 2))
    print(
        f"gunicorn 2 workers x 4 threads, {clients} client processes, {options.gunicorn_rounds} "
        f"rounds of {', '.join(names)} and back, {seconds / 2:g} s each"
    )
    rate = {name: statistics.median(r for r, _ in rounds[name]) for name in names}
    cpu = {name: statistics.median(c for _, c in rounds[name]) for name in names}
    for name in names:
        ratios = [r / b for (r, _), (b, _) in zip(rounds[name], rounds["bare"], strict=True)]
        print(
            f"  {LABELS[name] + ':':28} {rate[name]:7.0f} req/s, {cpu[name]:5.0f} us server CPU "
            f"per request, x{statistics.median(ratios):.2f} of bare (rounds: {_range(ratios, '.2f')})"
        )
    print(
        f"  server CPU ratio smorest-dump/ours {cpu['smorest-dump'] / cpu['ours']:.2f}, "
        f"smorest-response/ours {cpu['smorest-response'] / cpu['ours']:.2f}"
    )


def _range(values, spec: str = ".1f") -> str:
    values = sorted(values)
    return f"{values[0]:{spec}}-{values[-1]:{spec}}"


if __name__ == "__main__":
    main()
