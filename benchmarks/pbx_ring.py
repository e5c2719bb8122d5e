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

    .venv/bin/python -m benchmarks.pbx_ring [--rounds 200] [--crm-ms 50] [--against REF]

``--against REF`` serves a base tree too (a git revision or a checkout, see ``benchmarks.lookup``)
behind a third Kamailio running that tree's ``docs/pbx/kamailio.cfg``, and each round rings through
both trees' (in turn, the order swapped every other round), so both trees' figures, config
included, come from the same run.
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

from benchmarks.harness import ROOT, FakeCRM, Gunicorn, base_tree, clean_env
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
    parser.add_argument("--against", help="a git revision or a checkout, rung in the same rounds")
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
        trees = [("this tree", ROOT)]
        if options.against:
            path, against_name = stack.enter_context(base_tree(options.against))
            trees.append((f"base {against_name}", path))
        sink = stack.enter_context(Sink())
        named_callers = []
        for number, (_, tree) in enumerate(trees):
            server = stack.enter_context(
                Gunicorn(
                    {
                        **env,
                        "CTI_DATABASE": str(tmp / f"cti-{number}.sqlite3"),
                        # a tree from before CTI_LOOKUP_KEYS takes the PBX's key as an API key
                        **(
                            {}
                            if _lookup_keys(tree)
                            else {"CTI_API_KEYS": f"bench-full-key,{API_KEY}"}
                        ),
                    },
                    workers=1,
                    threads=4,
                    tree=tree,
                    cwd=tmp,
                    log=tmp / f"gunicorn-{number}.log",
                    extra_args=("--graceful-timeout", "5"),
                )
            )
            server.wait_ready()
            url = f"{server.base}/api/v1/contacts/lookup?format=text&api_key={API_KEY}"
            config = tree / "docs" / "pbx" / "kamailio.cfg"  # each tree's documented config
            if not config.exists():  # a tree from before it (73ac50c): this tree's, said so
                print(
                    f"{trees[number][0]} has no docs/pbx/kamailio.cfg: it rings through this tree's"
                )
                config = ROOT / "docs" / "pbx" / "kamailio.cfg"
            named = stack.enter_context(kamailio_proxy(url, config=config))
            named_callers.append(stack.enter_context(Caller(named, sink.port)))
        bare = stack.enter_context(kamailio_proxy(url, lookup=False))
        bare_caller = stack.enter_context(Caller(bare, sink.port))
        crm_conn = http.client.HTTPConnection("127.0.0.1", crm.port, timeout=10)

        for named_caller in named_callers:
            ring(named_caller, sink, KNOWN)  # the known caller is cached from here on
        times: dict[str, list[float]] = {"bare": [], "crm": []}
        for name, _ in trees:
            times.update({f"{name} hit": [], f"{name} miss": []})
        for n in range(options.warmup + options.rounds):
            unseen = f"072{1000000 + n:07d}"
            bare_time, bare_name = ring(bare_caller, sink, KNOWN)
            measured = {"bare": bare_time, "crm": crm_direct(crm_conn)}
            order = list(zip(trees, named_callers, strict=True))
            for (name, _), named_caller in order if n % 2 == 0 else order[::-1]:
                hit_time, hit_name = ring(named_caller, sink, KNOWN)
                miss_time, miss_name = ring(named_caller, sink, unseen)
                assert bare_name != hit_name == miss_name == "James May (My Company name)"
                measured.update({f"{name} hit": hit_time, f"{name} miss": miss_time})
            if n >= options.warmup:
                for name, value in measured.items():
                    times[name].append(value)
        crm_conn.close()

    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"pbx ring, {options.rounds} rounds, fake CRM answering in {options.crm_ms:g} ms")
    print("median INVITE sent -> INVITE relayed:")
    print(f"  no lookup       {med['bare']:8.2f} ms")
    for name, _ in trees:
        prefix = "" if name == "this tree" else f"{name}: "
        if prefix:
            print(f"{name}, in the same rounds:")
        hit, miss = med[f"{name} hit"], med[f"{name} miss"]
        print(f"  cached caller   {hit:8.2f} ms")
        print(f"  uncached caller {miss:8.2f} ms   (the CRM asked directly: {med['crm']:.2f} ms)")
        hit_adds = hit - med["bare"]
        miss_adds = miss - med["bare"] - med["crm"]
        print(
            f"{prefix}a hit adds          {hit_adds:6.2f} ms (target <= 1.5 ms) "
            f"{_mark(hit_adds <= 1.5)}"
        )
        print(
            f"{prefix}a miss adds         {miss_adds:6.2f} ms over the CRM (target <= 3 ms) "
            f"{_mark(miss_adds <= 3)}"
        )


def _lookup_keys(tree: Path) -> bool:
    """Whether a tree's settings know ``CTI_LOOKUP_KEYS`` (73ac50c predates them)."""
    return "CTI_LOOKUP_KEYS" in (tree / "middleware" / "settings.py").read_text()


def _mark(ok: bool) -> str:
    return "ok" if ok else "OVER TARGET"


if __name__ == "__main__":
    main()
