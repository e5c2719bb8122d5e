"""``make run``: both servers on this machine with development defaults, and links that work.

    HOST=127.0.0.1 PORT=8000 python -m middleware.commands.dev

What neither the environment nor ``.env`` sets is filled in: the API key ``dev-key`` and the
webhook secret ``dev-secret`` (README), the development token secret (start-up warns while it
signs tokens), and the stream server beside gunicorn (``CTI_STREAM_URL``, ``CTI_STREAM_ORIGINS``).
Agent 6000 is then issued a token with exactly these settings, and the printed links carry that
token rather than a key or a secret: they sign agent 6000 in and place its calls, nothing more;
the ``/console`` link carries a supervisor token. A token that cannot be issued stops here with
its error. With the sandbox CRM and agent provider, a sample floor is seeded for the console
(``flask --app app sandbox floor``, another process; ``SANDBOX_FLOOR=no`` skips it). Then
``middleware/commands/serve.py`` runs both servers in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ..auth import Credentials
from ..errors import Problem, Unsupported
from ..factory import CONFIG_ERROR_EXIT
from ..runtime.secrets import DEVELOPMENT_TOKEN_SECRET
from ..settings import SettingsError, load_settings, read_environment
from . import serve

AGENT = "6000"
SUPERVISOR = "Supervisor"
DEVELOPMENT = {
    "CTI_API_KEYS": "dev-key",
    "CTI_WEBHOOK_SECRET": "dev-secret",
    "CTI_TOKEN_SECRET": DEVELOPMENT_TOKEN_SECRET,
}


def development_environment(env: dict[str, str]) -> dict[str, str]:
    """What ``env`` (the environment over ``.env``) leaves unset or empty, filled in."""
    host = env.get("HOST") or "127.0.0.1"
    port = env.get("PORT") or "8000"
    stream_port = env.get("STREAM_PORT") or str(int(port) + 1)
    defaults = {
        **DEVELOPMENT,
        "CTI_STREAM_URL": f"http://{host}:{stream_port}",
        "CTI_STREAM_ORIGINS": f"http://{host}:{port},http://localhost:{port}",
        "HOST": host,
        "PORT": port,
        "STREAM_PORT": stream_port,
    }
    return {name: value for name, value in defaults.items() if not env.get(name)}


def links(base: str, stream_url: str, token: str, console_token: str) -> list[str]:
    """What to try, each signed in with agent 6000's token; the console with a supervisor's."""
    body = f'{{"to": "072 123 4567", "agent": "{AGENT}"}}'
    return [
        f"Try:  curl -X POST {base}/api/v1/calls -H 'Authorization: Bearer {token}'"
        f" -H 'Content-Type: application/json' -d '{body}'",
        f"  or open {base}/click-to-call?to=0721234567&agent={AGENT}&api_key={token}",
        f"Screen-pop streams: the stream server on {stream_url} (the /agent page opens them there).",
        f"  agent {AGENT}'s page: {base}/agent#agent={AGENT}&token={token}",
        f"  the supervisor console: {base}/console#token={console_token}",
        "The full API key and the webhook secret: CTI_API_KEYS and CTI_WEBHOOK_SECRET, or the"
        " development ones in README.md when unset.",
    ]


def main() -> int:
    os.environ.update(development_environment(read_environment()))
    try:
        settings = load_settings(read_environment())
    except SettingsError as exc:
        print(f"cti-middleware: configuration error: {exc}", file=sys.stderr, flush=True)
        return CONFIG_ERROR_EXIT
    try:
        if not settings.api_keys:  # without a key no token is accepted either (contract, 1)
            raise Unsupported("CTI_API_KEYS holds no key, so no token is accepted.")
        credentials = Credentials.from_settings(settings)
        token, _ = credentials.issue(AGENT)
        console_token, _ = credentials.issue_supervisor(SUPERVISOR)
    except Problem as problem:
        print(f"cti-middleware: no token for agent {AGENT}: {problem.detail}", file=sys.stderr)
        return 1
    base = f"http://{os.environ['HOST']}:{os.environ['PORT']}"
    sandbox = settings.crm == settings.agent_provider == "sandbox"
    if sandbox and os.environ.get("SANDBOX_FLOOR", "yes") != "no":
        seed_floor()
    print(f"Serving on {base} with the {settings.dialer} dialer and the {settings.crm} CRM.")
    for line in links(base, settings.stream_url or base, token, console_token):
        print(line)
    sys.stdout.flush()
    return serve.main()


def seed_floor() -> None:
    """The sample floor, in a process of its own (this one forks the servers next); one that
    cannot be seeded is said and the servers start all the same."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "sandbox", "floor"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        print(done.stdout.strip())
    else:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"cti-middleware: no sample floor: {last}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
