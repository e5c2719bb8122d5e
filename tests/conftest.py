"""Shared fixtures: a hermetic environment, an app factory, and HTTP-level upstream fakes."""

from __future__ import annotations

import logging
import os

import pytest
import responses

from middleware import create_app

from .pg_server import PASSWORD as PG_PASSWORD
from .pg_server import postgres_server, postgres_url, sql_database  # noqa: F401 - SQL store
from .redis_server import redis_server, redis_url, shared_env  # noqa: F401 - fixtures

API_KEY = "test-api-key-7f3a"
WEBHOOK_SECRET = "test-webhook-secret-91c2"
CC_AGENT_URL = "http://pbx.test"
CC_AGENT_KEY = "cc-agent-key-5d1e"
ZAIN_URL = "http://zain.test"
ZAIN_TOKEN = "zain-token-8b2c"
TELEPHONY_URL = "http://telephony.test"
TELEPHONY_TOKEN = "telephony-token-3e9f"
CRM_URL = "http://crm.test"
CRM_KEY = "crm-key-6a4d"
IBIZFONE_URL = "http://ibizfone.test"
IBIZFONE_KEY = "ibizfone-key-2c7b"
LOOKUP_KEY = "test-lookup-key-4e1b"
TOKEN_SECRET = "test-token-secret-0d9e8c7b6a5f4e3d2c1b"

#: Every credential the tests hand the app; none may ever show in a log line or a response.
SECRETS = (
    API_KEY,
    WEBHOOK_SECRET,
    CC_AGENT_KEY,
    ZAIN_TOKEN,
    TELEPHONY_TOKEN,
    CRM_KEY,
    IBIZFONE_KEY,
    PG_PASSWORD,
    LOOKUP_KEY,
    TOKEN_SECRET,
)

DIALER_ENV = {
    "cc_agent": {
        "CTI_DIALER": "cc_agent",
        "CTI_CC_AGENT_URL": CC_AGENT_URL,
        "CTI_CC_AGENT_API_KEY": CC_AGENT_KEY,
    },
    "zain": {
        "CTI_DIALER": "zain",
        "CTI_ZAIN_URL": ZAIN_URL,
        "CTI_ZAIN_TOKEN": ZAIN_TOKEN,
        "CTI_ZAIN_DOMAIN": "example.com",
    },
    "telephony": {
        "CTI_DIALER": "telephony",
        "CTI_TELEPHONY_URL": TELEPHONY_URL,
        "CTI_TELEPHONY_TOKEN": TELEPHONY_TOKEN,
    },
    "sandbox": {"CTI_DIALER": "sandbox"},
}


#: Fixtures that start a real PostgreSQL or Redis server, and the parameters of the store fixtures
#: that do: a test using one is ``slow``, as the modules that start other processes (gunicorn, the
#: stream server, Kamailio, nginx, a subprocess) are by their ``pytestmark``.
SERVER_FIXTURES = {"postgres_server", "postgres_url", "redis_server", "redis_url"}
SERVER_PARAMS = {"sql_database": {"postgresql"}, "shared_env": {"postgresql", "redis"}}


def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test on a real PostgreSQL or Redis server (``make check`` skips them)."""
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if SERVER_FIXTURES.intersection(item.fixturenames) or any(
            params.get(name) in values for name, values in SERVER_PARAMS.items()
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch, tmp_path):
    """No CTI_* variable or .env from the developer's machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("CTI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_app(tmp_path):
    """Build an app from CTI_* overrides, with the key and secret set and a private store."""

    def factory(**env):
        config = {
            "CTI_API_KEYS": API_KEY,
            "CTI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CTI_DATABASE": str(tmp_path / "cti.sqlite3"),
            **env,
        }
        app = create_app(config)
        app.config["TESTING"] = True
        return app

    return factory


@pytest.fixture
def journal_app(make_app, tmp_path, upstream):
    """Build an app with the agents file that journals to a fake CRM: it knows ``contacts``
    (James by default) and takes every call log. Extra CTI_* settings as keywords."""
    from .journal_fakes import journal_env  # it imports this module

    def factory(contacts: dict[str, dict] | None = None, **env):
        return make_app(**journal_env(upstream, tmp_path, contacts), **env)

    return factory


@pytest.fixture
def settings() -> dict:
    """The CTI_* settings of the shared ``app``, beside ``make_app``'s key, secret and private
    store: none by default. A module whose tests need others overrides this fixture (it may take
    other fixtures, e.g. register upstream fakes or write an agents file); a test may parametrise
    ``settings`` directly (``@pytest.mark.parametrize("settings", [{...}])``)."""
    return {}


@pytest.fixture
def app(make_app, settings):
    """The app of ``settings``; tests needing two apps or an app in a ``with`` call ``make_app``."""
    return make_app(**settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    """Flask's CLI runner of ``app`` (``runner.invoke(args=["journal", "deliver"])``)."""
    return app.test_cli_runner()


@pytest.fixture
def auth():
    return {"X-API-Key": API_KEY}


@pytest.fixture
def upstream():
    """Fake every upstream at the HTTP level; an unexpected request fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog):
    """Every test doubles as a check that no credential reaches a log line."""
    caplog.set_level(logging.DEBUG)
    yield
    text = (
        "\n".join(caplog.handler.format(record) for record in caplog.get_records("call"))
        + caplog.text
    )
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"secret(s) in captured logs: {leaked}"
