"""Cache-hit lookup throughput with Redis against the embedded store, in one run.

Three gunicorn servers (2 workers each, the same settings but the cache) answer
``GET /api/v1/contacts/lookup`` for one known caller, measured in alternating rounds so that the
machine's load drift falls on all three alike:

- embedded: the in-process cache of each worker (no ``CTI_REDIS_URL``);
- redis: ``CTI_REDIS_URL`` set, default ``CTI_CACHE_LOCAL_TTL`` (a hot hit is served by the
  in-process first level, Redis is read once per entry every few seconds);
- redis, no first level: ``CTI_CACHE_LOCAL_TTL=0``, so every hit is one Redis ``GET``.

    .venv/bin/python benchmarks/lookup_redis.py [--seconds 5] [--rounds 3] [--clients 4]

Needs ``redis-server`` on PATH (a private instance on a free port is started and stopped).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
from pathlib import Path

from lookup import (
    API_KEY,
    KNOWN,
    ROOT,
    THREADS,
    WORKERS,
    free_port,
    serve_crm,
    start_gunicorn,
    stop,
    throughput,
    wait_ready,
)

sys.path.insert(0, str(ROOT))
from tests.redis_server import RedisServer, redis_available  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5, help="per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    options = parser.parse_args()
    if not redis_available():
        raise SystemExit("redis-server is not installed")

    crm_port = free_port()
    crm = multiprocessing.Process(target=serve_crm, args=(crm_port,), daemon=True)
    crm.start()
    redis = RedisServer().start()
    servers: dict[str, tuple[int, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
        base_env.update(
            PYTHONPATH=str(ROOT),
            CTI_API_KEYS=API_KEY,
            CTI_CRM="switchtransact",
            CTI_CRM_URL=f"http://127.0.0.1:{crm_port}",
            CTI_CRM_API_KEY="bench-crm-key",
            CTI_CACHE_SIZE="1000000",
        )
        variants = {
            "embedded": {},
            "redis": {"CTI_REDIS_URL": redis.url},
            "redis, no first level": {"CTI_REDIS_URL": redis.url, "CTI_CACHE_LOCAL_TTL": "0"},
        }
        hit_path = f"/api/v1/contacts/lookup?phone={KNOWN}"
        try:
            for n, (name, extra) in enumerate(variants.items()):
                port = free_port()
                env = {**base_env, "CTI_DATABASE": str(Path(tmp) / f"cti{n}.sqlite3"), **extra}
                process = start_gunicorn("app:app", port, env, ROOT, Path(tmp) / f"cti{n}.log")
                servers[name] = (port, process)
            for port, _ in servers.values():
                wait_ready(port, hit_path)
            rates: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
            with multiprocessing.Pool(options.clients) as pool:
                for port, process in servers.values():  # warm each server and its cache
                    throughput(pool, port, hit_path, 1, options.clients, process.pid)
                for _ in range(options.rounds):
                    for name, (port, process) in servers.items():
                        rates[name].append(
                            throughput(
                                pool, port, hit_path, options.seconds, options.clients, process.pid
                            )
                        )
        finally:
            for _, process in servers.values():
                stop(process)
            redis.close()
            crm.terminate()

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
