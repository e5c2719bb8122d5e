"""Ring time through a real PBX: from the INVITE sent to the INVITE relayed to the agent's phone.

Kamailio (``docs/pbx/kamailio.cfg``, as documented) relays a caller's INVITE to a SIP sink; with
the lookup it first asks our plain-text lookup (gunicorn, one worker with threads, the fake
SwitchTransact over HTTP answering after ``--crm-ms``) and puts the name in the From header. Each
round times, back to back in one run:

- ``bare``: a second Kamailio, the same config without the lookup (``-A WITHOUT_CALLER_NAME``);
- ``hit``: a caller the cache knows;
- ``miss``: a caller never seen (one CRM request), and the fake CRM asked directly (``crm``).

It prints the medians and what the lookup adds: ``hit - bare`` (target <= 2 ms) and
``miss - bare - crm`` (target <= 3 ms over the CRM).

    .venv/bin/python -m benchmarks.pbx_ring [--rounds 200] [--crm-ms 50]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import FakeCRM, Gunicorn, clean_env
from tests.kamailio import kamailio_proxy, missing
from tests.sip import Caller, Sink, display_name

API_KEY = "bench-pbx-key"  # a CTI_LOOKUP_KEYS key, as a PBX holds
KNOWN = "+27721234567"


def ring(caller: Caller, sink: Sink, user: str) -> tuple[float, str]:
    """Seconds from the INVITE sent to the INVITE relayed, and the display name it arrived with."""
    call_id, sent = caller.invite(user)
    invite = sink.wait(call_id)
    caller.finish(call_id)
    return invite.received_at - sent, display_name(invite.one("From"))


def crm_direct(conn: http.client.HTTPConnection) -> float:
    started = time.perf_counter()
    conn.request("GET", "/calls/record?phone=%2B27720000000")
    conn.getresponse().read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first")
    parser.add_argument("--crm-ms", type=float, default=50, help="the fake CRM's answer delay")
    options = parser.parse_args()
    reason = missing()
    if reason:
        sys.exit(f"cannot run: {reason}")

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        crm = stack.enter_context(FakeCRM(delay=options.crm_ms / 1000))
        env = clean_env(
            {
                "CTI_API_KEYS": "bench-full-key",
                "CTI_LOOKUP_KEYS": API_KEY,
                "CTI_CRM": "switchtransact",
                "CTI_CRM_URL": crm.url,
                "CTI_CRM_API_KEY": "bench-crm-key",
                "CTI_DATABASE": str(tmp / "cti.sqlite3"),
                "CTI_CACHE_SIZE": "1000000",
            }
        )
        server = stack.enter_context(
            Gunicorn(
                env,
                workers=1,
                threads=4,
                cwd=tmp,
                log=tmp / "gunicorn.log",
                extra_args=("--graceful-timeout", "5"),
            )
        )
        server.wait_ready()
        base = server.base
        url = f"{base}/api/v1/contacts/lookup?format=text&api_key={API_KEY}"
        named = stack.enter_context(kamailio_proxy(url))
        bare = stack.enter_context(kamailio_proxy(url, lookup=False))
        sink = stack.enter_context(Sink())
        named_caller = stack.enter_context(Caller(named, sink.port))
        bare_caller = stack.enter_context(Caller(bare, sink.port))
        crm_conn = http.client.HTTPConnection("127.0.0.1", crm.port, timeout=10)

        ring(named_caller, sink, KNOWN)  # the known caller is cached from here on
        times: dict[str, list[float]] = {"bare": [], "hit": [], "miss": [], "crm": []}
        for n in range(options.warmup + options.rounds):
            unseen = f"072{1000000 + n:07d}"
            bare_time, bare_name = ring(bare_caller, sink, KNOWN)
            hit_time, hit_name = ring(named_caller, sink, KNOWN)
            miss_time, miss_name = ring(named_caller, sink, unseen)
            crm_time = crm_direct(crm_conn)
            assert bare_name != hit_name == miss_name == "James May (My Company name)"
            if n >= options.warmup:
                for name, value in zip(
                    times, (bare_time, hit_time, miss_time, crm_time), strict=True
                ):
                    times[name].append(value)
        crm_conn.close()

    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"pbx ring, {options.rounds} rounds, fake CRM answering in {options.crm_ms:g} ms")
    print("median INVITE sent -> INVITE relayed:")
    print(f"  no lookup       {med['bare']:8.2f} ms")
    print(f"  cached caller   {med['hit']:8.2f} ms")
    print(
        f"  uncached caller {med['miss']:8.2f} ms   (the CRM asked directly: {med['crm']:.2f} ms)"
    )
    hit_adds = med["hit"] - med["bare"]
    miss_adds = med["miss"] - med["bare"] - med["crm"]
    print(f"a hit adds          {hit_adds:6.2f} ms (target <= 2 ms) {_mark(hit_adds <= 2)}")
    print(
        f"a miss adds         {miss_adds:6.2f} ms over the CRM (target <= 3 ms) {_mark(miss_adds <= 3)}"
    )


def _mark(ok: bool) -> str:
    return "ok" if ok else "OVER TARGET"


if __name__ == "__main__":
    main()
