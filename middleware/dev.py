"""``make run``: both servers on this machine with development defaults, and links that work.

    HOST=127.0.0.1 PORT=8000 python -m middleware.dev

What neither the environment nor ``.env`` sets is filled in: the API key ``dev-key`` and the
webhook secret ``dev-secret`` (README), the development token secret (start-up warns while it
signs tokens), and the stream server beside gunicorn (``CTI_STREAM_URL``, ``CTI_STREAM_ORIGINS``).
Agent 6000 is then issued a token with exactly these settings, and the printed links carry that
token rather than a key or a secret: they sign agent 6000 in and place its calls, nothing more. A
token that cannot be issued stops here with its error. Then ``middleware/serve.py`` runs both
servers in this process.
"""

from __future__ import annotations

import os
import sys

from . import serve
from .auth import Credentials
from .errors import Problem, Unsupported
from .factory import CONFIG_ERROR_EXIT
from .secrets import DEVELOPMENT_TOKEN_SECRET
from .settings import SettingsError, load_settings, read_environment

AGENT = "6000"
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


def links(base: str, stream_url: str, token: str) -> list[str]:
    """What to try, each signed in with agent 6000's token."""
    body = f'{{"to": "072 123 4567", "agent": "{AGENT}"}}'
    return [
        f"Try:  curl -X POST {base}/api/v1/calls -H 'Authorization: Bearer {token}'"
        f" -H 'Content-Type: application/json' -d '{body}'",
        f"  or open {base}/click-to-call?to=0721234567&agent={AGENT}&api_key={token}",
        f"Screen-pop streams: the stream server on {stream_url} (the /agent page opens them there).",
        f"  agent {AGENT}'s page: {base}/agent#agent={AGENT}&token={token}",
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
        token, _ = Credentials.from_settings(settings).issue(AGENT)
    except Problem as problem:
        print(f"cti-middleware: no token for agent {AGENT}: {problem.detail}", file=sys.stderr)
        return 1
    base = f"http://{os.environ['HOST']}:{os.environ['PORT']}"
    print(f"Serving on {base} with the {settings.dialer} dialer and the {settings.crm} CRM.")
    for line in links(base, settings.stream_url or base, token):
        print(line)
    sys.stdout.flush()
    return serve.main()


if __name__ == "__main__":
    sys.exit(main())
