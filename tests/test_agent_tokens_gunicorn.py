"""Agent tokens across hosts: two gunicorn instances, each with a store of its own, sharing only
``CTI_TOKEN_SECRET``. A token one issues works on the other (it is checked without the store);
once the secret changes and both restart, it answers 401."""

from __future__ import annotations

import contextlib

import pytest
import requests

from .conftest import API_KEY, WEBHOOK_SECRET
from .gunicorn_runner import gunicorn

pytestmark = pytest.mark.slow

NEW_SECRET = "rotated-token-secret-5f4e3d2c1b0a9f8e7d6c"
OLD_SECRET = "first-token-secret-0a1b2c3d4e5f6a7b8c9d"


@contextlib.contextmanager
def two_hosts(tmp_path, secret: str):
    def env(name):
        return {
            "CTI_API_KEYS": API_KEY,
            "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CTI_TOKEN_SECRET": secret,
            "CTI_DATABASE": str(tmp_path / f"{name}.sqlite3"),  # nothing shared but the secret
        }

    with (
        gunicorn(env("a"), workers=1, cwd=tmp_path) as a,
        gunicorn(env("b"), workers=1, cwd=tmp_path) as b,
    ):
        yield a, b


def click(host: str, bearer: dict) -> requests.Response:
    return requests.post(
        f"{host}/api/v1/calls",
        json={"to": "0721234567", "agent": "6000"},
        headers=bearer,
        timeout=5,
    )


def test_a_token_from_host_a_works_on_host_b_until_the_secret_changes(tmp_path):
    with two_hosts(tmp_path, OLD_SECRET) as (a, b):
        issued = requests.post(
            f"{a}/api/v1/agents/6000/token", headers={"X-API-Key": API_KEY}, timeout=5
        )
        assert issued.status_code == 201
        token = issued.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}

        call = click(b, bearer)
        assert call.status_code == 201
        assert call.json()["agent"] == "6000"
        other = requests.get(f"{b}/api/v1/agents/6001/calls", headers=bearer, timeout=5)
        assert other.status_code == 403

    with two_hosts(tmp_path, NEW_SECRET) as (a, b):
        for host in (a, b):
            answer = click(host, bearer)
            assert answer.status_code == 401
            assert answer.json()["code"] == "unauthorized"

    logs = "".join(path.read_text() for path in tmp_path.glob("gunicorn-*.log"))
    assert "/api/v1/calls" in logs  # the requests were logged...
    for secret in (token, OLD_SECRET, NEW_SECRET):
        assert secret not in logs  # ...without the token or either secret
