"""Cache-hit lookup throughput with Redis against the embedded store, in one run.

Three gunicorn servers (2 workers each, the same settings but the cache) answer
``GET /api/v1/contacts/lookup`` for one known caller, measured in alternating rounds so that the
machine's load drift falls on all three alike:

- embedded: the in-process cache of each worker (no ``CTI_REDIS_URL``);
- redis: ``CTI_REDIS_URL`` set, default ``CTI_CACHE_LOCAL_TTL`` (a hot hit is served by the
  in-process first level, Redis is read once per entry every few seconds);
- redis, no first level: ``CTI_CACHE_LOCAL_TTL=0``, so every hit is one Redis ``GET``.

    .venv/bin/python -m benchmarks.lookup_redis [--seconds 5] [--rounds 3] [--clients 4]

Needs ``redis-server`` on PATH (a private instance on a free port is started and stopped).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
from pathlib import Path

from benchmarks.harness import FakeCRM, Gunicorn, clean_env
from benchmarks.lookup import API_KEY, KNOWN, THREADS, WORKERS, throughput
from tests.redis_server import RedisServer, redis_available


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of load per server first")
    options = parser.parse_args()
    if not redis_available():
        raise SystemExit("redis-server is not installed")

    servers: dict[str, Gunicorn] = {}
    redis = RedisServer()
    with FakeCRM() as crm, tempfile.TemporaryDirectory() as tmp:
        redis.start()
        base_env = clean_env(
            {
                "CTI_API_KEYS": API_KEY,
                "CTI_CRM": "switchtransact",
                "CTI_CRM_URL": crm.url,
                "CTI_CRM_API_KEY": "bench-crm-key",
                "CTI_CACHE_SIZE": "1000000",
            }
        )
        variants = {
            "embedded": {},
            "redis": {"CTI_REDIS_URL": redis.url},
            "redis, no first level": {"CTI_REDIS_URL": redis.url, "CTI_CACHE_LOCAL_TTL": "0"},
        }
        hit_path = f"/api/v1/contacts/lookup?phone={KNOWN}"
        try:
            for n, (name, extra) in enumerate(variants.items()):
                env = {**base_env, "CTI_DATABASE": str(Path(tmp) / f"cti{n}.sqlite3"), **extra}
                servers[name] = Gunicorn(
                    env, workers=WORKERS, threads=THREADS, log=Path(tmp) / f"cti{n}.log"
                )
            for server in servers.values():
                server.wait_ready(hit_path, {"X-API-Key": API_KEY})
            rates: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
            with multiprocessing.Pool(options.clients) as pool:
                for server in servers.values():  # warm each server and its cache
                    throughput(
                        pool, server.port, hit_path, options.warmup, options.clients, server.pid
                    )
                for _ in range(options.rounds):
                    for name, server in servers.items():
                        rates[name].append(
                            throughput(
                                pool,
                                server.port,
                                hit_path,
                                options.seconds,
                                options.clients,
                                server.pid,
                            )
                        )
        finally:
            for server in servers.values():
                server.stop()
            redis.close()

    print(
        f"gunicorn {WORKERS} workers x {THREADS} threads per server, {options.clients} client "
        f"processes, {options.rounds} alternating rounds of {options.seconds:g} s"
    )
    embedded = statistics.median(rate for rate, _ in rates["embedded"])
    for name, rounds in rates.items():
        rate = statistics.median(r for r, _ in rounds)
        cpu = statistics.median(c for _, c in rounds)
        listed = ", ".join(f"{r:.0f}" for r, _ in rounds)
        print(
            f"cache-hit lookup, {name + ':':23s} {rate:7.0f} req/s  x{rate / embedded:.2f} of "
            f"embedded, {cpu:4.0f} us server CPU per request  (rounds: {listed})"
        )


if __name__ == "__main__":
    main()
