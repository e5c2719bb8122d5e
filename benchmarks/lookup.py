"""Caller lookup speed under gunicorn (2 workers) with a fake SwitchTransact, in one run.

Prints two figures:

1. cache-hit lookup throughput of ``GET /api/v1/contacts/lookup`` against a bare Flask endpoint
   served by gunicorn with the same settings, in the same run: each round measures bare, hit, hit,
   bare back to back, so a change in the machine's speed weighs on both, and the figure is the
   median of the rounds' ratios (target >= 0.8);
2. the median latency a cache miss adds over the fake CRM's own latency (target <= 2 ms): each
   round asks the fake CRM directly, then the middleware for a number it has never seen (one CRM
   request), then the same number again (a hit). ``miss - crm`` is everything the middleware adds
   to the CRM's answer, HTTP serving included; ``miss - hit - crm`` is the miss path alone. The
   same again against a CRM that closes every connection after its answer (HTTP/1.1
   ``Connection: close``, as many PHP, IIS and load-balanced stacks do): its direct time is then
   measured on a new connection each time, so ``miss - crm`` compares like with like, and the
   TCP connect alone is printed beside it.

    .venv/bin/python -m benchmarks.lookup [--seconds 4] [--rounds 5] [--clients 4] [--misses 300]
        [--key full|lookup]

``--against TREE`` serves a second checkout (``git worktree add /tmp/old REV``) beside this one,
with the same settings, and the rounds become bare, hit, old hit, old hit, hit, bare and bare, old
hit, hit, hit, old hit, bare in turn (the inner server runs twice in a row, warm the second time,
so the trees take that place alike): the hit/bare ratio of both trees in one run, under the same load of the machine (issue 14's acceptance 4).

``--key lookup`` asks with a key of ``CTI_LOOKUP_KEYS`` instead of ``CTI_API_KEYS`` (what a PBX
holds): both must cost the same on a hit.

Each fake CRM runs in its own process (asyncio, HTTP/1.1), the load comes
from client processes with persistent ``http.client`` connections. The machine's other load shows
in the figures: run it a few times and read the range.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import socket
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import FakeCRM, Gunicorn, clean_env, workers_cpu

API_KEY = "bench-api-key"
LOOKUP_KEY = "bench-lookup-key"
KEY = API_KEY  # the key every request presents (--key); set before the client processes fork
WORKERS, THREADS = 2, 4
KNOWN = "0721234567"


# load --------------------------------------------------------------------------------------------


def _hammer(args) -> int:
    port, path, seconds = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-API-Key": KEY}
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        done += 1
    conn.close()
    return done


def throughput(pool, port: int, path: str, seconds: float, clients: int, master: int):
    """(requests per second, server CPU microseconds per request)."""
    cpu = workers_cpu(master)
    done = sum(pool.map(_hammer, [(port, path, seconds)] * clients))
    return done / seconds, (workers_cpu(master) - cpu) / done * 1e6


def _timed_get(conn, path: str, headers: dict) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}")
    return elapsed, body


def connect_ms(port: int, rounds: int = 200) -> float:
    """The median time of a TCP connect to ``port`` (what a closing CRM costs each request)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        socket.create_connection(("127.0.0.1", port)).close()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def miss_latency(cti_port: int, crm_port: int, rounds: int, offset: int, close=False) -> dict:
    cti = http.client.HTTPConnection("127.0.0.1", cti_port, timeout=10)
    crm = http.client.HTTPConnection("127.0.0.1", crm_port, timeout=10)
    headers = {"X-API-Key": KEY}
    direct, misses, hits = [], [], []
    for i in range(rounds):
        number = f"07{(offset + i) % 10**8:08d}"
        e164 = "%2B27" + number[1:]
        if close:  # the CRM closed the last one: a new connection, as the middleware makes
            crm = http.client.HTTPConnection("127.0.0.1", crm_port, timeout=10)
        direct.append(_timed_get(crm, f"/calls/record?phone={e164}", {})[0])
        seconds, body = _timed_get(cti, f"/api/v1/contacts/lookup?phone={number}", headers)
        if json.loads(body)["cached"]:
            raise SystemExit("a miss was answered from the cache")
        misses.append(seconds)
        hits.append(_timed_get(cti, f"/api/v1/contacts/lookup?phone={number}", headers)[0])
    ms = 1000
    crm_ms = statistics.median(direct) * ms
    miss_ms = statistics.median(misses) * ms
    hit_ms = statistics.median(hits) * ms
    return {
        "crm_ms": crm_ms,
        "miss_ms": miss_ms,
        "hit_ms": hit_ms,
        "added_ms": statistics.median(m - d for m, d in zip(misses, direct, strict=True)) * ms,
        "miss_path_ms": statistics.median(
            m - h - d for m, h, d in zip(misses, hits, direct, strict=True)
        )
        * ms,
    }


# the run -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4, help="per server and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of bare, hit, hit, bare")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--misses", type=int, default=300, help="cache misses to time")
    parser.add_argument("--key", choices=("full", "lookup"), default="full", help="credential kind")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of load per server first")
    parser.add_argument(
        "--against", type=Path, help="another checkout, measured in the same rounds"
    )
    options = parser.parse_args()
    global KEY
    KEY = LOOKUP_KEY if options.key == "lookup" else API_KEY

    with (
        FakeCRM() as crm,
        FakeCRM(close=True) as closing_crm,
        tempfile.TemporaryDirectory() as tmp,
    ):
        cti_env = clean_env(
            {
                "CTI_API_KEYS": API_KEY,
                "CTI_LOOKUP_KEYS": LOOKUP_KEY,
                "CTI_CRM": "switchtransact",
                "CTI_CRM_URL": crm.url,
                "CTI_CRM_API_KEY": "bench-crm-key",
                "CTI_DATABASE": str(Path(tmp) / "cti.sqlite3"),
                "CTI_CACHE_SIZE": "1000000",
            }
        )
        closing_env = {
            **cti_env,
            "CTI_CRM_URL": closing_crm.url,
            "CTI_DATABASE": str(Path(tmp) / "closing.sqlite3"),
        }
        sizes = {"workers": WORKERS, "threads": THREADS}
        against = options.against.resolve() if options.against else None
        old_env = {**cti_env, "CTI_DATABASE": str(Path(tmp) / "old.sqlite3")}
        with (
            Gunicorn(cti_env, log=Path(tmp) / "cti.log", **sizes) as cti,
            (
                Gunicorn(old_env, log=Path(tmp) / "old.log", cwd=against, **sizes)
                if against
                else contextlib.nullcontext()
            ) as old,
            Gunicorn(
                clean_env(), app="benchmarks.bare_app:app", log=Path(tmp) / "bare.log", **sizes
            ) as bare_server,
            Gunicorn(closing_env, log=Path(tmp) / "closing.log", **sizes) as closing_cti,
        ):
            hit_path = f"/api/v1/contacts/lookup?phone={KNOWN}"
            cti.wait_ready(hit_path, {"X-API-Key": KEY})
            if against:
                old.wait_ready(hit_path, {"X-API-Key": KEY})
                trees = f"this tree serves {_operations(cti.port)} operations, {against} " + (
                    f"{_operations(old.port)}"
                )
            closing_cti.wait_ready(hit_path, {"X-API-Key": KEY})
            bare_server.wait_ready("/bare")
            cti_port, cti_pid = cti.port, cti.pid
            bare_port, bare_pid = bare_server.port, bare_server.pid
            with multiprocessing.Pool(options.clients) as pool:
                warm = options.warmup
                throughput(pool, cti_port, hit_path, warm, options.clients, cti_pid)  # warm both
                throughput(pool, bare_port, "/bare", warm, options.clients, bare_pid)
                if against:
                    throughput(pool, old.port, hit_path, warm, options.clients, old.pid)
                health = throughput(
                    pool, cti_port, "/healthz", options.seconds, options.clients, cti_pid
                )
                bare, hit, ratios, old_hit, old_ratios = [], [], [], [], []
                servers = [(cti_port, hit_path, cti_pid)]
                if against:
                    servers.append((old.port, hit_path, old.pid))
                for number in range(options.rounds):
                    # bare, hit, [old, old,] hit, bare: a drift in the machine's speed weighs on
                    # each alike. The server in the middle runs twice in a row (its second run
                    # finds it warm), so the two trees swap places every other round.
                    swap = bool(against) and number % 2 == 1
                    order = servers[::-1] if swap else servers
                    sequence = [(bare_port, "/bare", bare_pid), *order, *order[::-1]]
                    sequence.append(sequence[0])
                    runs: dict[int, tuple[float, float]] = {}
                    measured = [
                        throughput(pool, port, path, options.seconds / 2, options.clients, pid)
                        for port, path, pid in sequence
                    ]
                    outer, inner = (1, 0) if swap else (0, 1)
                    runs[outer] = _mean(measured[1], measured[-2])
                    if against:
                        runs[inner] = _mean(measured[2], measured[3])
                    bare.append(_mean(measured[0], measured[-1]))
                    hit.append(runs[0])
                    ratios.append(hit[-1][0] / bare[-1][0])
                    if against:
                        old_hit.append(runs[1])
                        old_ratios.append(old_hit[-1][0] / bare[-1][0])
            offset = int(time.time() * 1000) % 10**7
            miss_latency(cti_port, crm.port, 30, offset)  # warm connections and code paths
            latency = miss_latency(cti_port, crm.port, options.misses, offset + 10**6)
            miss_latency(closing_cti.port, closing_crm.port, 30, offset + 2 * 10**6, close=True)
            closing = miss_latency(
                closing_cti.port, closing_crm.port, options.misses, offset + 3 * 10**6, close=True
            )
            connect = connect_ms(closing_crm.port)

    bare_rps = statistics.median(r for r, _ in bare)
    hit_rps = statistics.median(r for r, _ in hit)
    bare_cpu = statistics.median(c for _, c in bare)
    hit_cpu = statistics.median(c for _, c in hit)
    print(
        f"gunicorn {WORKERS} workers x {THREADS} threads, {options.clients} client processes, "
        f"{options.rounds} rounds of bare, hit, {'old hit, old hit, ' if against else ''}hit, bare"
        f"{' (then bare, old hit, hit, hit, old hit, bare)' if against else ''}, "
        f"{options.seconds / 2:g} s each, "
        f"{options.key} key"
    )
    if against:
        print(
            f"against {against} (the trees swap the inner and outer places every other round): {trees}"
        )
    print(f"bare Flask endpoint:     {bare_rps:8.0f} req/s  (rounds: {_list(bare)})")
    print(f"cache-hit lookup:        {hit_rps:8.0f} req/s  (rounds: {_list(hit)})")
    print(
        f"ratio hit/bare:          {statistics.median(ratios):8.2f}  median of the rounds' ratios "
        f"({', '.join(f'{r:.2f}' for r in ratios)}); target >= 0.8"
    )
    if against:
        old_cpu = statistics.median(c for _, c in old_hit)
        print(
            f"old tree's hit lookup:   {statistics.median(r for r, _ in old_hit):8.0f} req/s  "
            f"(rounds: {_list(old_hit)})"
        )
        print(
            f"old tree's ratio hit/bare: {statistics.median(old_ratios):6.2f}  median of the "
            f"rounds' ratios ({', '.join(f'{r:.2f}' for r in old_ratios)}); this tree's "
            f"{statistics.median(ratios):.2f}"
        )
        print(f"old tree's server CPU per hit: {old_cpu:.0f} us; this tree's {hit_cpu:.0f} us")
    health_rps, health_cpu = health
    print(
        f"for scale, this app's /healthz: {health_rps:.0f} req/s, {health_cpu:.0f} us CPU per "
        "request (what every request of the app costs: auth, request log line, metrics)"
    )
    print(
        f"server CPU per request:  bare {bare_cpu:.0f} us, hit {hit_cpu:.0f} us, "
        f"ratio bare/hit {bare_cpu / hit_cpu:.2f} (throughput ratio on an otherwise idle machine)"
    )
    print(
        f"fake CRM direct:         {latency['crm_ms']:8.2f} ms median over {options.misses} misses"
    )
    print(f"lookup miss:             {latency['miss_ms']:8.2f} ms median")
    print(f"lookup hit:              {latency['hit_ms']:8.2f} ms median")
    print(f"miss added over the CRM: {latency['added_ms']:8.2f} ms median  (target <= 2 ms)")
    print(f"miss path alone:         {latency['miss_path_ms']:8.2f} ms median (miss - hit - CRM)")
    print("a CRM that closes every connection (Connection: close):")
    print(
        f"  fake CRM direct, each on a new connection: {closing['crm_ms']:6.2f} ms median "
        f"(of which a TCP connect alone: {connect:.2f} ms)"
    )
    print(f"  lookup miss:             {closing['miss_ms']:6.2f} ms median")
    print(
        f"  miss added over the CRM and its connect: {closing['added_ms']:6.2f} ms median "
        "(target <= 2 ms)"
    )
    print(f"  miss path alone:         {closing['miss_path_ms']:6.2f} ms median")


def _operations(port: int) -> int:
    """How many operations a server's OpenAPI document describes (which tree answers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/v1/openapi.json")
    paths = json.loads(conn.getresponse().read())["paths"]
    conn.close()
    return sum(len(methods) for methods in paths.values())


def _mean(first, second) -> tuple[float, float]:
    return (first[0] + second[0]) / 2, (first[1] + second[1]) / 2


def _list(rounds) -> str:
    return ", ".join(f"{rate:.0f}" for rate, _ in rounds)


if __name__ == "__main__":
    main()
