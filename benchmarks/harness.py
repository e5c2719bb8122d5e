"""What the benchmarks share: free ports, a gunicorn launcher, a fake SwitchTransact, and the CPU
and processes of a server read from Linux's /proc.

Benchmarks run from the checkout's root as modules (``.venv/bin/python -m benchmarks.lookup``), so
``middleware``, ``devtools`` (the gunicorn launcher the tests use too) and the test helpers
(``tests.*``: Redis, Kamailio, SIP) import as they are.
``tests/test_benchmarks_smoke.py`` runs each benchmark with tiny counts in ``make test``, so none
can rot; their figures come from full runs on a quiet machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import devtools.gunicorn
from devtools.processes import ROOT, clean_env, free_port
from tests.contacts import JAMES

__all__ = [
    "ROOT",
    "FakeCRM",
    "Gunicorn",
    "base_tree",
    "clean_env",
    "descendants",
    "free_port",
    "process_cpu",
    "workers",
    "workers_cpu",
]

TICKS = os.sysconf("SC_CLK_TCK")


# gunicorn ----------------------------------------------------------------------------------------


class Gunicorn(devtools.gunicorn.Gunicorn):
    """The shared launcher (``devtools.gunicorn``), with what a benchmark reads of the server: its
    workers and the CPU they have used so far (``cpu()``)."""

    def workers(self) -> list[int]:
        return workers(self.pid)

    def wait_settled(self, count: int, *, quiet: float = 0.5, timeout: float = 60) -> None:
        """Until ``count`` workers run and none has used CPU for ``quiet`` seconds: ``wait_ready``
        returns once one worker answers, while the others may still be importing the app, which
        would count in the figures of what comes next."""
        give_up = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < give_up:
            pids = self.workers()
            now = (tuple(sorted(pids)), sum(process_cpu(pid) for pid in pids))
            if now != last:
                last, since = now, time.monotonic()
            elif len(pids) >= count and time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)
        raise SystemExit(f"gunicorn on port {self.port}: its workers did not settle")

    def cpu(self) -> float:
        return workers_cpu(self.pid)


# the tree to compare with -----------------------------------------------------------------------


@contextlib.contextmanager
def base_tree(ref: str):
    """``(path, name)`` of the code to measure beside this checkout: ``ref`` is a directory (a
    checkout, served as it is) or a git revision of this repository (``main``, ``73ac50c``), whose
    files ``git archive`` writes into a temporary directory, removed afterwards. The same virtual
    environment serves both (``Gunicorn(tree=...)`` puts the tree first on the path)."""
    if Path(ref).is_dir():
        path = Path(ref).resolve()
        yield path, str(path)
        return
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--short", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if commit.returncode:
        raise SystemExit(f"--against {ref}: neither a directory nor a revision of this repository")
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit.stdout.strip()],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp), f"{ref} ({commit.stdout.strip()})" if ref != commit.stdout.strip() else ref


# /proc -------------------------------------------------------------------------------------------


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (``[1]`` the parent, ``[11:13]`` the
    user and system ticks)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _parents() -> dict[int, list[int]]:
    """parent pid -> its children's pids, of every process now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat(entry.name)[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def workers(master: int) -> list[int]:
    """The children of ``master`` (a gunicorn master's workers)."""
    return _parents().get(master, [])


def workers_cpu(master: int) -> float:
    """CPU seconds used so far by the children of ``master``."""
    return sum(process_cpu(pid) for pid in workers(master))


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process under ``root``."""
    children = _parents()
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            try:
                found[child] = (
                    Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
            except OSError:
                continue
            todo.append(child)
    return found


# the fake SwitchTransact -------------------------------------------------------------------------


class FakeCRM:
    """A fake SwitchTransact in a process of its own: every number is a contact (James May under
    the number asked), every call log is taken; ``logs()`` counts the logs it received.

    Raw HTTP/1.1 on asyncio, keep-alive or (``close``) answering ``Connection: close`` and closing
    each connection after its answer, as many PHP, IIS and load-balanced stacks do; each answer
    ``delay`` seconds late. A few tens of microseconds of CPU per request, so the fake takes little
    of the machine the middleware runs on.
    """

    def __init__(self, *, close: bool = False, delay: float = 0.0):
        context = multiprocessing.get_context("spawn")
        self._ready, child = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve_crm, args=(child, close, delay), daemon=True)

    def __enter__(self) -> FakeCRM:
        self._process.start()
        if not self._ready.poll(30):
            self._process.terminate()
            raise SystemExit("the fake CRM did not start")
        self.port = self._ready.recv()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid = self._process.pid
        return self

    def __exit__(self, *exc) -> None:
        self._process.terminate()
        self._process.join(5)

    def logs(self) -> int:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as answer:
            return json.loads(answer.read())["logs"]


def _serve_crm(ready, close: bool, delay: float) -> None:
    logs = 0
    closing = "Connection: close\r\n" if close else ""

    def answer(status: int, body: dict) -> bytes:
        data = json.dumps(body).encode()
        return (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{closing}\r\n"
        ).encode() + data

    async def handle(reader, writer):
        nonlocal logs
        try:
            while request_line := await reader.readline():
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                payload = await reader.readexactly(length) if length else b""
                url = urlsplit(target)
                if method == "GET" and url.path == "/calls/record":
                    phone = unquote(parse_qs(url.query).get("phone", [""])[0])
                    reply = answer(
                        200, {"status": True, "contact": {**JAMES, "mobilephone": phone}}
                    )
                elif method == "POST" and url.path == "/calls/log":
                    json.loads(payload)
                    logs += 1
                    reply = answer(200, {"status": True})
                elif url.path == "/stats":
                    reply = answer(200, {"logs": logs})
                else:
                    reply = answer(404, {"status": False, "error": "not found"})
                if delay and url.path != "/stats":
                    await asyncio.sleep(delay)
                writer.write(reply)
                if close and url.path != "/stats":
                    await writer.drain()
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ready.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())
