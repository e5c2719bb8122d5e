"""What a cache miss costs over the CRM, against the floor of this machine, in one run.

    .venv/bin/python -m benchmarks.miss_floor [--rounds 4] [--misses 100] [--crm-ms 50]

Serves, each under gunicorn with this tree's ``gunicorn.conf.py`` and 2 workers x 4 threads: this
tree (``app:app``), and ``benchmarks/miss_floor_app.py`` four times, asking the CRM with
``http.client`` (the floor: no service, no cache, nothing but Flask and a socket), with
``urllib3.PoolManager.request`` (the pool ``requests`` is built on), with
``requests.Session.get``, and with the middleware's own upstream edge. Each round asks every
server for a number it has never seen and then again (a hit), in turn beside one direct CRM
request (``benchmarks.lookup.miss_latency``; the order reversed every other round), and prints per
server the medians of the rounds' "miss path alone" (miss - hit - CRM) and of the margin to issue
23's target (miss <= CRM + hit + 1 ms; negative is under it).

So the miss path splits into what the machine's wake-ups and Flask cost (the floor), what the HTTP
client adds (urllib3 over ``http.client``, ``requests`` over urllib3), and what the service adds
(this tree over the edge alone).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import lookup
from benchmarks.harness import FakeCRM, Gunicorn, clean_env

SERVERS = (
    ("this tree", None),
    ("floor: Flask + http.client", "http.client"),
    ("Flask + urllib3.PoolManager", "urllib3"),
    ("Flask + requests.Session.get", "requests"),
    ("Flask + the tree's upstream edge", "edge"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--misses", type=int, default=100, help="misses per server and round")
    parser.add_argument("--crm-ms", type=float, default=50, help="the fake CRM's answer delay")
    options = parser.parse_args()
    lookup.KEY = lookup.API_KEY
    with (
        FakeCRM(delay=options.crm_ms / 1000) as crm,
        tempfile.TemporaryDirectory() as tmp,
        contextlib.ExitStack() as stack,
    ):
        ports = []
        for index, (_, client) in enumerate(SERVERS):
            env = clean_env(
                {
                    "CTI_API_KEYS": lookup.API_KEY,
                    "CTI_CRM": "switchtransact",
                    "CTI_CRM_URL": crm.url,
                    "CTI_CRM_API_KEY": "bench-crm-key",
                    "CTI_DATABASE": str(Path(tmp) / f"cti{index}.sqlite3"),
                    "CTI_CACHE_SIZE": "1000000",
                    **({"FLOOR_CLIENT": client} if client else {}),
                }
            )
            app = "app:app" if client is None else "benchmarks.miss_floor_app:app"
            server = stack.enter_context(
                Gunicorn(env, app=app, log=Path(tmp) / f"{index}.log", workers=2, threads=4)
            )
            server.wait_ready(
                f"/api/v1/contacts/lookup?phone={lookup.KNOWN}", {"X-API-Key": lookup.KEY}
            )
            ports.append(server.port)
        offset = int(time.time() * 1000) % 10**7
        lookup.miss_latency(ports, crm.port, 30, offset)  # warm every server
        paths: list[list[float]] = [[] for _ in SERVERS]
        margins: list[list[float]] = [[] for _ in SERVERS]
        for number in range(options.rounds):
            figures = lookup.miss_latency(
                ports, crm.port, options.misses, offset + (number + 1) * 10**6
            )
            for index, found in enumerate(figures):
                paths[index].append(found["miss_path_ms"])
                margins[index].append(found["miss_ms"] - found["crm_ms"] - found["hit_ms"] - 1)
            print(
                f"round {number + 1}: CRM direct {figures[0]['crm_ms']:.2f} ms; miss path alone "
                + ", ".join(f"{found['miss_path_ms']:.2f}" for found in figures),
                flush=True,
            )
    print(
        f"gunicorn 2 workers x 4 threads, the fake CRM answering in {options.crm_ms:g} ms, "
        f"{options.rounds} rounds of {options.misses} misses and hits per server"
    )
    for (name, _), path, margin in zip(SERVERS, paths, margins, strict=True):
        print(
            f"{name:34} miss path alone {statistics.median(path):5.2f} ms, against CRM + hit + 1 ms "
            f"{statistics.median(margin):+.2f} ms (rounds {', '.join(f'{m:+.2f}' for m in margin)})"
        )


if __name__ == "__main__":
    main()
