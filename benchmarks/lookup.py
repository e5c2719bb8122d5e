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
        [--key full|lookup] [--against REF] [--crm-ms 0]

``--against REF`` serves a second tree beside this one (a git revision, written out with ``git
archive``, or a checkout's directory), with the same settings, and the rounds become bare, hit, old
hit, old hit, hit, bare and bare, old hit, hit, hit, old hit, bare in turn (the inner server runs
twice in a row, warm the second time, so the trees take that place alike): the hit/bare ratio of
both trees in one run, under the same load of the machine. The misses then ask both trees in each
round (in turn, the order swapped every other round), against one direct CRM request.

``--crm-ms`` makes the fake CRMs answer that late (the issue's CRM: 50 ms).

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

from benchmarks.harness import FakeCRM, Gunicorn, base_tree, clean_env, workers_cpu

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


def miss_latency(
    cti_ports: list[int], crm_port: int, rounds: int, offset: int, close=False
) -> list[dict]:
    """Per server, the medians of ``rounds`` misses, each beside a direct CRM request and a hit of
    the same number; with several servers (trees), each round asks them in turn, in the other
    order every other round."""
    ctis = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for port in cti_ports]
    crm = http.client.HTTPConnection("127.0.0.1", crm_port, timeout=10)
    headers = {"X-API-Key": KEY}
    direct: list[float] = []
    misses: list[list[float]] = [[] for _ in ctis]
    hits: list[list[float]] = [[] for _ in ctis]
    for i in range(rounds):
        if close:  # the CRM closed the last one: a new connection, as the middleware makes
            crm = http.client.HTTPConnection("127.0.0.1", crm_port, timeout=10)
        direct.append(_timed_get(crm, "/calls/record?phone=%2B27720000000", {})[0])
        order = list(enumerate(ctis))
        for index, cti in order if i % 2 == 0 else order[::-1]:
            number = f"07{(offset + i * len(ctis) + index) % 10**8:08d}"
            seconds, body = _timed_get(cti, f"/api/v1/contacts/lookup?phone={number}", headers)
            if json.loads(body)["cached"]:
                raise SystemExit("a miss was answered from the cache")
            misses[index].append(seconds)
            hits[index].append(
                _timed_get(cti, f"/api/v1/contacts/lookup?phone={number}", headers)[0]
            )
    ms = 1000
    return [
        {
            "crm_ms": statistics.median(direct) * ms,
            "miss_ms": statistics.median(miss) * ms,
            "hit_ms": statistics.median(hit) * ms,
            "added_ms": statistics.median(m - d for m, d in zip(miss, direct, strict=True)) * ms,
            "miss_path_ms": statistics.median(
                m - h - d for m, h, d in zip(miss, hit, direct, strict=True)
            )
            * ms,
        }
        for miss, hit in zip(misses, hits, strict=True)
    ]


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
        "--against", help="a git revision or another checkout, measured in the same rounds"
    )
    parser.add_argument("--crm-ms", type=float, default=0, help="the fake CRMs' answer delay")
    options = parser.parse_args()
    global KEY
    KEY = LOOKUP_KEY if options.key == "lookup" else API_KEY

    delay = options.crm_ms / 1000
    with (
        FakeCRM(delay=delay) as crm,
        FakeCRM(close=True, delay=delay) as closing_crm,
        tempfile.TemporaryDirectory() as tmp,
        base_tree(options.against) if options.against else contextlib.nullcontext((None, None)) as (
            against,
            against_name,
        ),
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
        old_env = {**cti_env, "CTI_DATABASE": str(Path(tmp) / "old.sqlite3")}
        old_closing_env = {**closing_env, "CTI_DATABASE": str(Path(tmp) / "old-closing.sqlite3")}
        with (
            Gunicorn(cti_env, log=Path(tmp) / "cti.log", **sizes) as cti,
            (
                Gunicorn(old_env, log=Path(tmp) / "old.log", tree=against, **sizes)
                if against
                else contextlib.nullcontext()
            ) as old,
            (
                Gunicorn(old_closing_env, log=Path(tmp) / "old-closing.log", tree=against, **sizes)
                if against
                else contextlib.nullcontext()
            ) as old_closing,
            Gunicorn(
                clean_env(), app="benchmarks.bare_app:app", log=Path(tmp) / "bare.log", **sizes
            ) as bare_server,
            Gunicorn(closing_env, log=Path(tmp) / "closing.log", **sizes) as closing_cti,
        ):
            hit_path = f"/api/v1/contacts/lookup?phone={KNOWN}"
            cti.wait_ready(hit_path, {"X-API-Key": KEY})
            if against:
                old.wait_ready(hit_path, {"X-API-Key": KEY})
                old_closing.wait_ready(hit_path, {"X-API-Key": KEY})
                trees = f"this tree serves {_operations(cti.port)} operations, {against_name} " + (
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
            ports = [cti_port] + ([old.port] if against else [])
            closing_ports = [closing_cti.port] + ([old_closing.port] if against else [])
            miss_latency(ports, crm.port, 30, offset)  # warm connections and code paths
            latency = miss_latency(ports, crm.port, options.misses, offset + 10**6)
            miss_latency(closing_ports, closing_crm.port, 30, offset + 2 * 10**6, close=True)
            closing = miss_latency(
                closing_ports, closing_crm.port, options.misses, offset + 3 * 10**6, close=True
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
            f"against {against_name} (the trees swap the inner and outer places every other round): {trees}"
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
        f"fake CRM direct:         {latency[0]['crm_ms']:8.2f} ms median over {options.misses} "
        f"misses{f' (answering in {options.crm_ms:g} ms)' if options.crm_ms else ''}"
        + (", each asked of both trees in turn" if against else "")
    )
    _misses(latency[0], "")
    if against:
        print("the old tree, in the same rounds:")
        _misses(latency[1], "  ")
    print("a CRM that closes every connection (Connection: close):")
    print(
        f"  fake CRM direct, each on a new connection: {closing[0]['crm_ms']:6.2f} ms median "
        f"(of which a TCP connect alone: {connect:.2f} ms)"
    )
    print(f"  lookup miss:             {closing[0]['miss_ms']:6.2f} ms median")
    print(
        f"  miss added over the CRM and its connect: {closing[0]['added_ms']:6.2f} ms median "
        "(target <= 2 ms)"
    )
    print(f"  miss path alone:         {closing[0]['miss_path_ms']:6.2f} ms median")
    if against:
        print(
            f"  the old tree: miss {closing[1]['miss_ms']:.2f} ms, added over the CRM and its "
            f"connect {closing[1]['added_ms']:.2f} ms, miss path alone "
            f"{closing[1]['miss_path_ms']:.2f} ms (medians)"
        )


def _misses(figures: dict, indent: str) -> None:
    print(f"{indent}lookup miss:             {figures['miss_ms']:8.2f} ms median")
    print(f"{indent}lookup hit:              {figures['hit_ms']:8.2f} ms median")
    print(
        f"{indent}miss added over the CRM: {figures['added_ms']:8.2f} ms median  (target <= 2 ms)"
    )
    print(
        f"{indent}miss path alone:         {figures['miss_path_ms']:8.2f} ms median "
        "(miss - hit - CRM)"
    )
    bound = figures["crm_ms"] + figures["hit_ms"] + 1
    print(
        f"{indent}miss median {figures['miss_ms']:.2f} ms against CRM direct + hit + 1 ms "
        f"= {bound:.2f} ms: {'ok' if figures['miss_ms'] <= bound else 'OVER TARGET'}"
    )


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
