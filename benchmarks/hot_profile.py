"""CPU per request of the hot paths, in-process, this tree against a base tree in the same run.

    .venv/bin/python -m benchmarks.hot_profile [--against REF] [--rounds 3] [--requests 2000]
        [--modes bare,hit,miss,ingest] [--profile N]

Each figure is the process's CPU time (``time.process_time``: every thread of it, so the lookup
pool's and the journal's group commit count too) per request, the app called directly as WSGI with
a prepared environ (no socket, no test client), the request log line formatted and written to
/dev/null as in a deployment. One child process per tree, mode and round, the trees in turn (this,
base, then base, this, ...), so a drift of a shared machine's speed weighs on both alike; each
figure printed is the median of the rounds.

- ``bare``: the bare Flask endpoint of ``benchmarks/bare_app.py`` (the floor);
- ``hit``: ``GET /api/v1/contacts/lookup?phone=0721234567``, a fresh cache hit;
- ``miss``: the same for a number never asked before, each one request to a fake SwitchTransact
  (``benchmarks/harness.py``, its own process, HTTP/1.1 keep-alive, answering at once);
- ``ingest``: ``POST /api/v1/webhooks/pbx`` of distinct one-leg ``call:end`` events at agent
  101, each answered 202 once committed with SQLite's ``synchronous=FULL`` (the deliverer not
  running); then ``deliver``: the same entries delivered by ``deliver_due``
  passes (the call logs sent to the fake CRM), CPU per entry, so work moved from the request to the
  deliverer still shows.

``--profile N`` runs each mode's timed loop under cProfile too (the figures are then inflated by
the profiler; read the breakdown, not the total) and prints the N functions of most own time,
per request, in microseconds; for ``ingest``, the deliveries' too, per entry delivered.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
KEY = "bench-api-key"
SECRET = "bench-webhook-secret"
# Events of the last hour, as a PBX sends them: the board shows (and writes) a leg of the last
# ``KEEP_SECONDS`` only, so fixed old timestamps would leave its write out of the figure.
T0 = int(time.time()) - 3600
KNOWN = "0721234567"
MODES = ("bare", "hit", "miss", "ingest")


# the child: one tree, one mode -------------------------------------------------------------------


def _app(crm_url: str, database: str):
    from middleware import create_app

    config = {name: None for name in os.environ if name.startswith("CTI_")}  # hermetic
    config.update(
        {
            "CTI_API_KEYS": KEY,
            "CTI_WEBHOOK_SECRET": SECRET,
            "CTI_CRM": "switchtransact",
            "CTI_CRM_URL": crm_url,
            "CTI_CRM_API_KEY": "bench-crm-key",
            "CTI_DATABASE": database,
            "CTI_CACHE_TTL": 86400,
            "CTI_CACHE_SIZE": 1000000,
            "CTI_JOURNAL_SETTLE_SECONDS": 0,
        }
    )
    app = create_app(config)
    app.config["JOURNAL_BACKGROUND"] = False
    return app


def _quiet() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life


def _environ(path: str, *, query=None, headers=None, method="GET", body: bytes | None = None):
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(
        path=path,
        method=method,
        query_string=query,
        headers=headers,
        data=body,
        content_type="application/json" if body is not None else None,
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


def _event(n: int) -> bytes:
    return json.dumps(
        {
            "event": "call:end",
            "id": f"hot-{n}",
            "call_id": f"hot-call-{n}",
            "ts": T0 + n,
            "type": "inbound",
            "cid_num": f"+2772{n % 10_000_000:07d}",
            "dst_user_id": 101,
            "durationms": 190000,
            "billms": 125000,
        }
    ).encode()


class Caller:
    def __init__(self, app):
        self.app = app
        self.status = None

    def _start(self, status, headers, exc_info=None):
        self.status = status

    def __call__(self, environ) -> bytes:
        answer = self.app(environ, self._start)
        try:
            return b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()


def _environs(mode: str, requests: int, offset: int) -> list[dict]:
    lookup = "/api/v1/contacts/lookup"
    headers = {"X-API-Key": KEY}
    if mode == "bare":
        return [_environ("/bare")] * requests
    if mode == "hit":
        return [_environ(lookup, query={"phone": KNOWN}, headers=headers)] * requests
    if mode == "miss":
        return [
            _environ(lookup, query={"phone": f"+2782{offset + n:07d}"}, headers=headers)
            for n in range(requests)
        ]
    return [
        _environ(
            "/api/v1/webhooks/pbx",
            method="POST",
            headers={"X-Webhook-Token": SECRET},
            body=_event(offset + n),
        )
        for n in range(requests)
    ]


def child(mode: str, requests: int, crm_url: str, profile: int) -> dict:
    import copy

    tmp = tempfile.mkdtemp(prefix="hot-")
    if mode == "bare":
        from benchmarks.bare_app import app
    else:
        app = _app(crm_url, str(Path(tmp) / "cti.sqlite3"))
    _quiet()
    call = Caller(app)
    expected = {"bare": "200 OK", "hit": "200 OK", "miss": "200 OK", "ingest": "202 ACCEPTED"}
    warm = _environs(mode, 200, 10_000_000 - 1000)  # a warm-up of other numbers and events
    for environ in warm:
        call(copy.copy(environ))
        if call.status != expected[mode]:
            raise SystemExit(f"{mode}: answered {call.status}")
    environs = [copy.copy(environ) for environ in _environs(mode, requests, 0)]
    # CPU time, the process's: a lookup's CRM request, made in the lookup pool's thread, shows
    # as the time the request thread waits for it (a lock's ``acquire``).
    profiler = cProfile.Profile(time.process_time) if profile else None
    results: dict = {}
    if profiler:
        profiler.enable()
    cpu = time.process_time()
    for environ in environs:
        call(environ)
    cpu = time.process_time() - cpu
    if profiler:
        profiler.disable()
    if call.status != expected[mode]:
        raise SystemExit(f"{mode}: answered {call.status}")
    results[mode] = cpu / requests * 1e6
    if mode == "ingest":
        services = app.extensions["cti"]
        delivered = 0
        delivering = cProfile.Profile(time.process_time) if profile else None
        if delivering:
            delivering.enable()
        cpu = time.process_time()
        while True:
            done = services.delivery.deliver_due(limit=1000)
            if not sum(done.values()):
                break
            delivered += done["delivered"]
        cpu = time.process_time() - cpu
        if delivering:
            delivering.disable()
            results["deliver profile"] = _top(delivering, max(delivered, 1), profile)
        results["deliver"] = cpu / max(delivered, 1) * 1e6
        results["delivered"] = delivered
    if profiler:
        results["profile"] = _top(profiler, requests, profile)
    return results


def _top(profiler: cProfile.Profile, requests: int, count: int) -> dict:
    """The ``count`` functions of most own time, and the ``count`` of ours (``middleware``,
    ``schemas``) of most cumulative time, per request."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows, ours = [], []
    for (file, line, name), (_cc, calls, own, total, _callers) in stats.stats.items():
        where = f"{Path(file).name}:{line}({name})" if line else name
        row = (own / requests * 1e6, total / requests * 1e6, calls / requests, where)
        rows.append(row)
        if f"{os.sep}middleware{os.sep}" in file or f"{os.sep}schemas{os.sep}" in file:
            ours.append((row[1], row[0], row[2], f"{Path(file).parent.name}/{where}"))
    rows.sort(reverse=True)
    ours.sort(reverse=True)
    return {"own": rows[:count], "ours": [(o, t, c, w) for t, o, c, w in ours[:count]]}


# the parent: trees in turn -----------------------------------------------------------------------


def _run(tree: Path, mode: str, args, crm_url: str) -> dict:
    code = (
        "import runpy, sys; sys.argv = sys.argv[1:]; "
        f"runpy.run_path({str(HERE)!r}, run_name='__main__')"
    )
    command = [
        sys.executable,
        "-c",
        code,
        str(HERE),
        "--child",
        mode,
        "--requests",
        str(args.requests),
        "--crm-url",
        crm_url,
        "--profile",
        str(args.profile),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{tree} {mode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="a git revision or a checkout, measured in turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--crm-url")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.requests, args.crm_url, args.profile)))
        return

    from benchmarks.harness import FakeCRM, base_tree

    modes = args.modes.split(",")
    with (
        FakeCRM() as crm,
        base_tree(args.against) if args.against else contextlib.nullcontext((None, None)) as (
            against,
            against_name,
        ),
    ):
        trees = {"this tree": ROOT}
        if against is not None:
            trees[against_name] = against
        figures: dict = {name: {} for name in trees}
        profiles: dict = {name: {} for name in trees}
        for round_ in range(args.rounds):
            order = list(trees.items()) if round_ % 2 == 0 else list(reversed(trees.items()))
            for mode in modes:
                for name, tree in order:
                    result = _run(tree, mode, args, crm.url)
                    for key, value in result.items():
                        if key == "profile":
                            profiles[name][mode] = value
                        elif key == "deliver profile":
                            profiles[name]["deliver"] = value
                        elif key != "delivered":
                            figures[name].setdefault(key, []).append(value)
        print(f"CPU per request, us (median of {args.rounds} rounds; each round's in brackets)")
        for key in figures["this tree"]:
            line = []
            for name in trees:
                values = figures[name][key]
                line.append(
                    f"{name} {statistics.median(values):7.1f} "
                    f"({', '.join(f'{v:.0f}' for v in values)})"
                )
            ratio = ""
            if against is not None:
                base = statistics.median(figures[against_name][key])
                ratio = f"  x{statistics.median(figures['this tree'][key]) / base:.2f}"
            print(f"  {key:8} " + " | ".join(line) + ratio)
        for name in trees:
            for mode, tables in profiles[name].items():
                for table, title in (("own", "most own time"), ("ours", "our code, cumulative")):
                    print(
                        f"\n{name}, {mode}, {title}: own / cumulative us per request, calls "
                        "per request (profiled)"
                    )
                    for own, total, calls, where in tables[table]:
                        print(f"  {own:7.1f} {total:8.1f} {calls:6.2f}  {where}")


if __name__ == "__main__":
    main()
