"""Do open streams starve anything else? ``make run``'s topology (gunicorn with gunicorn.conf.py
beside the stream server, ``python -m middleware.commands.serve``) with 0, 250, 500 and 1,000 open streams,
as a contact center holds them: agents' screen-pop streams and, with ``--board``, supervisors'
board streams among them.

    .venv/bin/python -m benchmarks.streams_vs_lookups [--streams 0,250,500,1000] [--lookups 300]
        [--calls 10] [--rings 50] [--board 100] [--per-agent 2] [--main-port]

Each agent stream signs in with its agent's token (``POST /api/v1/agents/{extension}/token``), each
board stream with a supervisor token of its own (``POST /api/v1/supervisors/token``: one credential
holds at most ``CTI_STREAMS_PER_CREDENTIAL`` streams of one kind). ``--per-agent 2``: every agent
has its page (token in the query, as EventSource sends it) and its extension (token in the
``X-API-Key`` header, as its fetch sends it) open. ``--board B``: B of each level's streams are
board streams (at level 0 one probe). ``--main-port``: every stream is opened on gunicorn's port and
follows the 307 to the stream server (contract, section 4); else they are opened on the stream
server directly.

At each level, one request at a time with a 3 s client timeout (as a PBX and a CRM send them):
cached caller lookups (answered, p50/p99), click-to-calls and ring webhooks (answer p50/p99), and
ring-to-pop at the client (webhook sent -> its ``screen-pop`` read on each of the agent's streams;
at level 0 one probe stream reads it); the servers' RSS and CPU (gunicorn's master and workers, the
stream server) over the measured phase. With board streams, each ring is followed by the call's
answer and end webhooks and a status change of the agent (``PUT .../status``), and each of these
four board changes is timed from its send to its ``board`` message on every board stream. Then the
targets: at the top level every lookup answered, lookup p99 at most twice its 0-stream value,
ring-to-pop p99 at most 250 ms, board change to every board stream p99 at most 250 ms, no stream
refused, and with ``--main-port`` every stream redirected to the stream server.

The client runs on the same machine and takes CPU too; its streams are held on one asyncio loop in
a process of their own (``benchmarks/stream_clients.py``), so they do not slow the timed requests'
client through its GIL. Uses the sandbox dialer, agent provider and CRM (no network). The soft
limit on open files is raised to the hard one (each stream is a socket at both ends, and on the
stream server a locked slot file too); the stream server's limit and open files are printed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.harness import ROOT, clean_env, descendants, free_port, process_cpu
from benchmarks.stream_clients import StreamsProcess, board_latencies, issue_tokens, level_specs
from devtools.processes import stop_group

KEY = "bench-key"
SECRET = "bench-secret"
TOKEN_SECRET = "bench-token-secret"
TIMEOUT = 3.0
PACE = 0.02  # seconds between two webhooks or status changes: spread out, not a burst
TARGET = 0.25
HOOK = "/api/v1/webhooks/pbx"


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_servers(tmp: str, port: int, stream_port: int) -> subprocess.Popen:
    """What ``make run`` starts, on free ports."""
    env = clean_env(
        {
            "CTI_API_KEYS": KEY,
            "CTI_WEBHOOK_SECRET": SECRET,
            "CTI_TOKEN_SECRET": TOKEN_SECRET,
            "CTI_DATABASE": f"{tmp}/cti.sqlite3",
            "CTI_STREAM_URL": f"http://127.0.0.1:{stream_port}",
            "CTI_STREAM_ORIGINS": f"http://127.0.0.1:{port}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "STREAM_PORT": str(stream_port),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "middleware.commands.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            for p in (port, stream_port):
                urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit("the servers did not start")


def stop(process: subprocess.Popen) -> None:
    stop_group(process, timeout=40)


def usage(root: int) -> dict[str, tuple[float, float]]:
    """{'gunicorn'|'streams': (cpu seconds, rss MB)} summed over the processes of each server."""
    totals = {"gunicorn": [0.0, 0.0], "streams": [0.0, 0.0]}
    for pid, command in descendants(root).items():
        kind = (
            "streams"
            if "stream_server" in command
            else "gunicorn"
            if "gunicorn" in command
            else None
        )
        if kind is None:
            continue
        try:
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
        except OSError:
            continue
        totals[kind][0] += process_cpu(pid)
        totals[kind][1] += rss / 2**20
    return {k: (v[0], v[1]) for k, v in totals.items()}


def timed(connection: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    """(status or None on timeout/failure, seconds)."""
    started = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    except (OSError, http.client.HTTPException):
        connection.close()
        return None, time.perf_counter() - started


def figures(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.1f}/{p99 * 1000:.1f}"


def p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def stream_server_files(root: int) -> tuple[int, int]:
    """(open files, soft limit on open files) of the stream server; (0, 0) when not found."""
    for pid, command in descendants(root).items():
        if "stream_server" in command:
            try:
                limits = Path(f"/proc/{pid}/limits").read_text()
                soft = next(line for line in limits.splitlines() if "open files" in line).split()[3]
                return len(os.listdir(f"/proc/{pid}/fd")), int(soft)
            except (OSError, StopIteration, ValueError):
                break
    return 0, 0


def run_level(root: int, port: int, streams: StreamsProcess, count: int, args) -> dict:
    level = count
    boards = min(args.board, count) if count else min(args.board, 1)
    agent_streams = max(count - boards, 1)  # at level 0 one probe stream reads the pops
    agents = [str(20000 + level * 10 + i) for i in range(math.ceil(agent_streams / args.per_agent))]
    tokens, supervisor_tokens = issue_tokens(port, KEY, agents, boards)
    specs, held = level_specs(agents, tokens, supervisor_tokens, agent_streams, args.per_agent)
    opening = streams.open(specs)
    time.sleep(1.0)
    files = stream_server_files(root)
    web = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    before, started = usage(root), time.monotonic()
    client_before = process_cpu(streams.process.pid)

    lookup_times, answered = [], 0
    for _ in range(args.lookups):
        status, seconds = timed(
            web, "GET", f"/api/v1/contacts/lookup?phone=0721234567&api_key={KEY}"
        )
        if status == 200:
            answered += 1
            lookup_times.append(seconds)
        else:
            web = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    call_times = []
    headers = {"Content-Type": "application/json", "X-API-Key": KEY}
    for i in range(args.calls):
        body = json.dumps({"to": "0721234567", "agent": str(5000 + level * 100 + i)})
        status, seconds = timed(web, "POST", "/api/v1/calls", body, headers)
        if status in (200, 201):
            call_times.append(seconds)

    hook_times, sent, changes, change_times, status_of = [], {}, [], [], {}
    hook_headers = {"Content-Type": "application/json", "X-Webhook-Token": SECRET}

    def send(method: str, path: str, body: dict, ok: int, shows: tuple, times: list) -> float:
        """One request, timed into ``times`` when answered ``ok``; with board streams, what the
        agent's entry then shows is a change to see on each. When it was sent."""
        at = time.monotonic()
        answer, seconds = timed(web, method, path, json.dumps(body), send_headers[method])
        if answer == ok:
            times.append(seconds)
            if boards:
                changes.append((shows, at))
        time.sleep(PACE)
        return at

    send_headers = {"POST": hook_headers, "PUT": headers}
    for i in range(args.rings):
        call_id = f"bench-{level}-{i}"
        agent = agents[(i * 7919) % len(agents)]
        leg = {
            "id": f"{call_id}-leg",
            "call_id": call_id,
            "type": "inbound",
            "cid_num": "0721234567",
            "dst_num": agent,
            "dst_user_id": agent,
            "ts": int(time.time()),
        }
        ring = {"event": "call:ring", **leg}
        at = send("POST", HOOK, ring, 202, (agent, call_id, "ringing", None), hook_times)
        sent[call_id] = (at, agent)
        if not boards:
            continue
        answer = {"event": "call:answer", **leg}
        send("POST", HOOK, answer, 202, (agent, call_id, "talking", None), change_times)
        end = {"event": "call:end", **leg, "durationms": 9000, "billms": 6000}  # answered
        send("POST", HOOK, end, 202, (agent, None, None, None), change_times)
        status = "available" if status_of.get(agent) == "paused" else "paused"
        status_of[agent] = status
        path = f"/api/v1/agents/{agent}/status"
        send("PUT", path, {"status": status}, 200, (agent, None, None, status), change_times)
    time.sleep(1.5)
    elapsed = time.monotonic() - started
    after = usage(root)
    client_cpu = (process_cpu(streams.process.pid) - client_before) / elapsed * 100
    pops_arrived, board_messages = streams.arrived()
    pops, expected = [], 0
    for call_id, (at, agent) in sent.items():
        expected += held[agent]
        pops += [arrival - at for arrival in pops_arrived.get(call_id, ())]
    latencies, missing, others = board_latencies(changes, board_messages, opening["board"])
    streams.close()
    time.sleep(0.5)
    refused = sum(opening["refused"].values())
    result = {
        "level": level,
        "specs": len(specs),
        "opened": opening["opened"],
        "redirected": opening["redirected"],
        "refused": refused,
        "answered": answered,
        "lookup_p99": p99(lookup_times),
        "pop_p99": p99(pops),
        "lost": expected - len(pops),
        "board_streams": opening["board"],
        "changes": len(changes),
        "board_p99": p99(latencies),
        "receipts": len(latencies),
        "board_lost": missing,
        "files": files,
    }
    cpu = {k: (after[k][0] - before[k][0]) / elapsed * 100 for k in after}
    print(
        f"{level:>6} {opening['opened']:>5}/{refused:<3} "
        f"{answered:>4}/{args.lookups:<4} {figures(lookup_times):>13} {figures(call_times):>13} "
        f"{figures(hook_times):>13} {figures(pops):>13} {result['lost']:>4} "
        f"{after['gunicorn'][1]:>7.0f} {after['streams'][1]:>6.0f} "
        f"{cpu['gunicorn']:>6.0f}% {cpu['streams']:>6.0f}%",
        flush=True,
    )
    followed = f", {opening['redirected']} after a 307" if args.main_port else ""
    print(
        f"       opened on the {'main port' if args.main_port else 'stream server'} in "
        f"{opening['seconds']:.1f} s: {opening['opened']} of {len(specs)} "
        f"({agent_streams} agent, {boards} board) served by the "
        f"stream server{followed}, refused {opening['refused'] or 0}; stream server {files[0]} open "
        f"files (limit {files[1]}); the client's streams {client_cpu:.0f}% CPU",
        flush=True,
    )
    if boards:
        print(
            f"       board: {len(changes)} changes sent (answer p50/p99 "
            f"{figures(change_times)} ms), {len(latencies)}/{len(changes) * opening['board']} "
            f"receipts, change-to-board p50/p99 {figures(latencies)} ms, "
            f"{others} other board messages",
            flush=True,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="0,250,500,1000")
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rings", type=int, default=50)
    parser.add_argument("--board", type=int, default=0, help="board streams among each level's")
    parser.add_argument("--per-agent", type=int, default=1, choices=(1, 2))
    parser.add_argument("--main-port", action="store_true", help="open the streams on gunicorn's")
    args = parser.parse_args()
    levels = [int(n) for n in args.streams.split(",")]
    limit = raise_open_files()
    port, stream_port = free_port(), free_port()
    print(
        f"open files limit {limit}; levels {levels}; board streams {args.board}; "
        f"{args.per_agent} per agent; opened on the {'main port' if args.main_port else 'stream server'}; "
        f"client timeout {TIMEOUT:g} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        server = start_servers(tmp, port, stream_port)
        try:
            warm = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            for _ in range(200):  # the cache of every worker, and the connection
                timed(warm, "GET", f"/api/v1/contacts/lookup?phone=0721234567&api_key={KEY}")
            base = f"http://127.0.0.1:{port if args.main_port else stream_port}"
            streams = StreamsProcess(base, stream_port)
            print(
                "streams opened/refused | lookups answered | lookup p50/p99 ms | click p50/p99 | "
                "webhook p50/p99 | ring-to-pop p50/p99 | lost | RSS MB gunicorn, streams | "
                "CPU gunicorn, streams"
            )
            results = [run_level(server.pid, port, streams, n, args) for n in levels]
            streams.stop()
        finally:
            stop(server)
    for name, held in targets(results, args).items():
        print(f"{'PASS' if held else 'FAIL'}  {name}")


def targets(results: list[dict], args) -> dict[str, bool]:
    base, top = results[0], results[-1]
    level = top["level"]
    checks = {
        f"every lookup answered at {level} streams": top["answered"] == args.lookups,
        f"lookup p99 at {level} <= 2x its {base['level']}-stream value "
        f"({top['lookup_p99'] * 1000:.1f} vs {base['lookup_p99'] * 1000:.1f} ms)": top["lookup_p99"]
        <= 2 * base["lookup_p99"],
        f"ring-to-pop p99 <= 250 ms ({top['pop_p99'] * 1000:.0f} ms), none lost": top["pop_p99"]
        <= TARGET
        and top["lost"] == 0,
    }
    if args.board:
        checks[
            f"board change to every board stream p99 <= 250 ms ({top['board_p99'] * 1000:.0f} ms: "
            f"{top['receipts']} receipts of {top['changes']} changes on {top['board_streams']} "
            f"board streams at {level}), none lost"
        ] = top["board_p99"] <= TARGET and top["board_lost"] == 0 and top["receipts"] > 0
    checks["no stream refused"] = all(r["refused"] == 0 for r in results)
    if args.main_port:
        checks[
            f"every stream opened on the main port ended on the stream server, 307 followed "
            f"({top['redirected']}/{top['specs']} at {level})"
        ] = all(r["redirected"] == r["specs"] for r in results)
    files, limit = top["files"]
    checks[
        f"the stream server's open-files limit holds 2 per stream and 200 more "
        f"(limit {limit}; {files} open at {level} streams)"
    ] = limit >= 2 * level + 200
    return checks


if __name__ == "__main__":
    main()
