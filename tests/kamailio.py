"""Kamailio (Debian's package) started for a test or a benchmark with the documented config.

``kamailio_proxy(lookup_url)`` runs ``docs/pbx/kamailio.cfg`` as it is, its values given with
``-A``, on a free UDP port, in the foreground (``-DD -E``) with its own runtime directory, and
kills it on exit. ``missing()`` names what is not installed, for a skip.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from devtools.processes import free_port, stop_group
from devtools.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "pbx" / "kamailio.cfg"
MODULES = ("tm", "sl", "pv", "maxfwd", "siputils", "textops", "xlog", "uac", "http_client")


def _binary() -> str | None:
    return shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin")


def _module_dir() -> Path | None:
    for candidate in glob.glob("/usr/lib/*/kamailio/modules") + ["/usr/lib/kamailio/modules"]:
        if (Path(candidate) / "tm.so").is_file():
            return Path(candidate)
    return None


def missing() -> str | None:
    """Why Kamailio cannot run here, or None."""
    if _binary() is None:
        return "kamailio is not installed (Debian: apt-get install kamailio kamailio-utils-modules)"
    directory = _module_dir()
    if directory is None:
        return "kamailio's module directory was not found"
    absent = [m for m in MODULES if not (directory / f"{m}.so").is_file()]
    if absent:
        return f"kamailio modules missing: {', '.join(absent)} (Debian: kamailio-utils-modules)"
    return None


def free_udp_port() -> int:
    while True:
        port = free_port()  # free for TCP; make sure it is for UDP too
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@contextlib.contextmanager
def kamailio_proxy(
    lookup_url: str,
    *,
    timeout: int = 2,
    lookup: bool = True,
    ready: float = 10,
    config: Path = CONFIG,
    whole_url: bool = False,
):
    """Yield the UDP port of a Kamailio that names callers through ``lookup_url`` (a text-form
    lookup URL with its key, to which ``&phone=`` is appended), run with ``config`` (a base
    tree's, for a benchmark: one from before ``CTI_SERVER`` takes the whole URL). ``whole_url``:
    ``CTI_LOOKUP`` alone, set to the whole URL, as a command line written for that form sets it."""
    port = free_udp_port()
    url = urlsplit(lookup_url)
    if "CTI_SERVER" in config.read_text() and not whole_url:
        values = [
            f'CTI_SERVER="cti=>{url.scheme}://{url.netloc}"',
            f'CTI_LOOKUP="{url.path}?{url.query}"',
        ]
    else:
        values = [f'CTI_LOOKUP="{lookup_url}"']
    run_dir = Path(tempfile.mkdtemp(prefix="kamailio-"))
    args = [
        _binary(),
        "-f",
        str(config),
        "-L",
        str(_module_dir()),
        "-Y",
        str(run_dir),
        "-w",
        str(run_dir),
        "-DD",
        "-E",
        "-m",
        "32",
        "-M",
        "8",
        "-A",
        f"LISTEN=udp:127.0.0.1:{port}",
        "-A",
        f"CTI_TIMEOUT={timeout}",
    ]
    for value in values:
        args += ["-A", value]
    if not lookup:
        args += ["-A", "WITHOUT_CALLER_NAME"]
    log_path = run_dir / "kamailio.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir, start_new_session=True
        )
    try:
        _wait_listening(process, port, log_path, ready)
        yield port
    finally:
        stop_group(process, timeout=5)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_listening(process, port: int, log_path: Path, timeout: float) -> None:
    """Until Kamailio answers an OPTIONS with Max-Forwards 0 (483: its workers are up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        mine = sock.getsockname()[1]
        message = "\r\n".join(
            [
                f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{mine};branch=z9hG4bKready;rport",
                "Max-Forwards: 0",
                "From: <sip:ready@127.0.0.1>;tag=ready",
                "To: <sip:ping@127.0.0.1>",
                "Call-ID: ready@127.0.0.1",
                "CSeq: 1 OPTIONS",
                "Content-Length: 0",
                "",
                "",
            ]
        ).encode()

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"kamailio exited: {log_path.read_text()[-3000:]}")
            sock.sendto(message, ("127.0.0.1", port))
            try:
                sock.recvfrom(65535)
            except TimeoutError:
                return False
            return True

        wait_until(
            answers,
            timeout,
            lambda: f"kamailio not ready: {log_path.read_text()[-3000:]}",
            interval=0,
        )
