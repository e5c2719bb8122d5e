"""One upstream GET, as each HTTP client makes it, over a CRM that answers late, in one run.

    .venv/bin/python -m benchmarks.upstream_clients [--requests 60] [--crm-ms 50]

One process asks the fake SwitchTransact (``benchmarks/harness.py``, kept-alive connections) for
``/calls/record`` with ``http.client``, urllib3's pool, ``requests.Session.get`` and the
middleware's own SwitchTransact client (``middleware/upstreams``: the edge a lookup uses), in turn,
the order reversed every other request, each request after the CRM's delay: the code of each runs
as it does on a miss, after ``--crm-ms`` of idleness, not in a warm loop. Prints each client's
median time over the CRM's delay (the first 10 requests of each are warm-up).
"""

from __future__ import annotations

import argparse
import http.client
import logging
import statistics
import time
from urllib.parse import urlencode

import requests
import urllib3

from benchmarks.harness import FakeCRM
from middleware.upstreams.switchtransact import SwitchTransactClient

HEADERS = {"Authorization": "Bearer bench-crm-key", "Accept": "application/json"}
WARM = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="per client, warm-up included")
    parser.add_argument("--crm-ms", type=float, default=50, help="the fake CRM's answer delay")
    options = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the edge's log line is not what is compared
    with FakeCRM(delay=options.crm_ms / 1000) as crm:
        connection = http.client.HTTPConnection("127.0.0.1", crm.port, timeout=10)
        pool = urllib3.HTTPConnectionPool("127.0.0.1", crm.port, maxsize=1, timeout=10)
        session = requests.Session()
        edge = SwitchTransactClient(crm.url, "bench-crm-key", timeout=10)

        def with_http_client(phone: str) -> None:
            connection.request(
                "GET", "/calls/record?" + urlencode({"phone": phone}), headers=HEADERS
            )
            connection.getresponse().read()

        def with_urllib3(phone: str) -> None:
            path = "/calls/record?" + urlencode({"phone": phone})
            pool.urlopen("GET", path, headers=HEADERS, retries=False)

        def with_requests(phone: str) -> None:
            session.get(f"{crm.url}/calls/record", params={"phone": phone}, headers=HEADERS)

        def with_edge(phone: str) -> None:
            edge.record_by_phone(phone)

        clients = [
            ("http.client", with_http_client),
            ("urllib3 HTTPConnectionPool.urlopen", with_urllib3),
            ("requests.Session.get", with_requests),
            ("the middleware's SwitchTransact client", with_edge),
        ]
        times: dict[str, list[float]] = {name: [] for name, _ in clients}
        for number in range(options.requests):
            for name, ask in clients if number % 2 == 0 else clients[::-1]:
                started = time.perf_counter()
                ask(f"+2772{number:07d}")
                times[name].append((time.perf_counter() - started) * 1000)
    print(
        f"one process, the fake CRM answering in {options.crm_ms:g} ms over kept-alive "
        f"connections, {options.requests - WARM} requests per client after {WARM} of warm-up"
    )
    floor = statistics.median(times["http.client"][WARM:]) - options.crm_ms
    for name, _ in clients:
        over = statistics.median(times[name][WARM:]) - options.crm_ms
        print(
            f"{name:40} {over:6.2f} ms over the CRM's delay ({over - floor:+.2f} ms over http.client)"
        )


if __name__ == "__main__":
    main()
