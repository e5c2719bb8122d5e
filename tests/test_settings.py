"""Settings are validated once at start-up; a wrong one stops the process with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from middleware.settings import SettingsError, load_settings, read_environment

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "env,variable",
    [
        ({"CTI_DIALER": "asterisk"}, "CTI_DIALER"),
        ({"CTI_DEFAULT_REGION": "XX"}, "CTI_DEFAULT_REGION"),
        ({"CTI_ALLOWED_COUNTRIES": "ZA,Narnia"}, "CTI_ALLOWED_COUNTRIES"),
        ({"CTI_CACHE_TTL": "-1"}, "CTI_CACHE_TTL"),
        ({"CTI_CACHE_SIZE": "lots"}, "CTI_CACHE_SIZE"),
        ({"CTI_UPSTREAM_TIMEOUT": "0"}, "CTI_UPSTREAM_TIMEOUT"),
        ({"CTI_LOOKUP_TIMEOUT": "nan"}, "CTI_LOOKUP_TIMEOUT"),
        ({"CTI_CALL_RATE": "fast"}, "CTI_CALL_RATE"),
        ({"CTI_DIAL_FORMAT": "pretty"}, "CTI_DIAL_FORMAT"),
        ({"CTI_CRM": "salesforce"}, "CTI_CRM"),
        ({"CTI_CRM": "switchtransact"}, "CTI_CRM_URL"),
        ({"CTI_DIALER": "cc_agent"}, "CTI_CC_AGENT_URL"),
        ({"CTI_DIALER": "cc_agent", "CTI_CC_AGENT_URL": "http://pbx"}, "CTI_CC_AGENT_API_KEY"),
        (
            {"CTI_DIALER": "zain", "CTI_ZAIN_URL": "http://z", "CTI_ZAIN_TOKEN": "t"},
            "CTI_ZAIN_DOMAIN",
        ),
        ({"CTI_DIALER": "telephony", "CTI_TELEPHONY_URL": "ftp://x"}, "CTI_TELEPHONY_URL"),
        ({"CTI_AGENT_PROVIDER": "ibizfone"}, "CTI_IBIZFONE_URL"),
        ({"CTI_TIMEZONE": "Mars/Olympus"}, "CTI_TIMEZONE"),
        ({"CTI_JOURNAL_MAX_ATTEMPTS": "0"}, "CTI_JOURNAL_MAX_ATTEMPTS"),
        ({"CTI_JOURNAL_SETTLE_SECONDS": "-1"}, "CTI_JOURNAL_SETTLE_SECONDS"),
        ({"CTI_JOURNAL_SETTLE_SECONDS": "soon"}, "CTI_JOURNAL_SETTLE_SECONDS"),
        ({"CTI_JOURNAL_SETTLE_SECONDS": "3601"}, "CTI_JOURNAL_SETTLE_SECONDS"),
        ({"CTI_AGENTS_FILE": "/nonexistent/agents.csv"}, "CTI_AGENTS_FILE"),
        ({"CTI_DATABASE": "mysql://db"}, "CTI_DATABASE"),
        ({"CTI_CRM_PHONE_FORMATS": "e164,roman"}, "CTI_CRM_PHONE_FORMATS"),
        ({"CTI_JOURNAL_RETENTION": "1.5d"}, "CTI_JOURNAL_RETENTION"),
        ({"CTI_STREAMS_PER_CREDENTIAL": "0"}, "CTI_STREAMS_PER_CREDENTIAL"),
        ({"CTI_STREAMS_PER_CREDENTIAL": "many"}, "CTI_STREAMS_PER_CREDENTIAL"),
        ({"CTI_FRAME_ORIGINS": "crm.example.com"}, "CTI_FRAME_ORIGINS"),
        ({"CTI_FRAME_ORIGINS": "https://crm.example.com/app"}, "CTI_FRAME_ORIGINS"),
        # Values that start-up took and a request then failed on (a 500) or carried out as given.
        ({"CTI_TOKEN_TTL": "300000000000"}, "CTI_TOKEN_TTL"),
        ({"CTI_LOOKUP_TIMEOUT": "1e15"}, "CTI_LOOKUP_TIMEOUT"),
        ({"CTI_UPSTREAM_TIMEOUT": "1e15"}, "CTI_UPSTREAM_TIMEOUT"),
        ({"CTI_CACHE_TTL": "1e17"}, "CTI_CACHE_TTL"),
        ({"CTI_DEDUPE_SECONDS": "1e12"}, "CTI_DEDUPE_SECONDS"),
        ({"CTI_POP_UNKNOWN_URL": "notaurl?p={phone}"}, "CTI_POP_UNKNOWN_URL"),
        ({"CTI_POP_CONTACT_URL": "javascript:alert(1)//{id}"}, "CTI_POP_CONTACT_URL"),
        ({"CTI_POP_CONTACT_URL": "https://crm.example/r/{foo}"}, "CTI_POP_CONTACT_URL"),
        ({"CTI_POP_UNKNOWN_URL": "https://crm.example/new?id={id}"}, "CTI_POP_UNKNOWN_URL"),
        ({"CTI_POP_UNKNOWN_URL": "https:///new?p={phone}"}, "CTI_POP_UNKNOWN_URL"),
        ({"CTI_STREAM_URL": "https://streams.example.com/sse/?x=1"}, "CTI_STREAM_URL"),
        ({"CTI_CRM": "switchtransact", "CTI_CRM_URL": "https://crm.example/api#x"}, "CTI_CRM_URL"),
    ],
)
def test_wrong_value_names_its_variable(env, variable):
    with pytest.raises(SettingsError) as raised:
        load_settings(env)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(variable + ":")
    assert "\n" not in str(raised.value)


def test_defaults_follow_the_contract():
    settings = load_settings({})

    assert settings.default_region == "ZA"
    assert settings.allowed_countries == frozenset({"ZA"})
    assert settings.dialer == settings.agent_provider == settings.crm == "sandbox"
    assert (settings.cache_ttl, settings.cache_negative_ttl, settings.cache_stale_ttl) == (
        300,
        60,
        86400,
    )
    assert settings.cache_size == 10000
    assert (settings.upstream_timeout, settings.lookup_timeout, settings.dedupe_seconds) == (
        5,
        2,
        10,
    )
    assert (settings.call_rate.limit, settings.call_rate.window) == (20, 60)
    assert settings.crm_phone_formats == ("e164", "national")
    assert settings.crm_auth_header == "Authorization"
    assert settings.database == "instance/cti.sqlite3"
    assert settings.journal_max_attempts == 8
    assert settings.journal_settle_seconds == 5
    assert settings.journal_retention == 90 * 86400
    assert str(settings.timezone) == "UTC"


@pytest.mark.parametrize(
    "raw,seconds",
    [
        ("90d", 90 * 86400),
        ("12h", 12 * 3600),
        ("30m", 1800),
        ("45s", 45),
        ("3600", 3600),
        ("0", 0),
        ("0d", 0),
        (" 7d ", 7 * 86400),
    ],
)
def test_journal_retention_is_a_duration(raw, seconds):
    assert load_settings({"CTI_JOURNAL_RETENTION": raw}).journal_retention == seconds


@pytest.mark.parametrize(
    "raw", ["-1", "-1d", "1.5d", "10w", "abc", "", "  ", "d", "90 d", "90D", "1e3", "+5m", "٩٠d"]
)
def test_a_wrong_journal_retention_stops_start_up_naming_it(raw):
    with pytest.raises(SettingsError) as raised:
        load_settings({"CTI_JOURNAL_RETENTION": raw})

    assert raised.value.variable == "CTI_JOURNAL_RETENTION"
    assert str(raised.value).startswith("CTI_JOURNAL_RETENTION:")
    assert "\n" not in str(raised.value)


def test_per_dialer_defaults():
    zain = load_settings(
        {
            "CTI_DIALER": "zain",
            "CTI_ZAIN_URL": "http://z",
            "CTI_ZAIN_TOKEN": "t",
            "CTI_ZAIN_DOMAIN": "d",
        }
    )
    cc = load_settings(
        {"CTI_DIALER": "cc_agent", "CTI_CC_AGENT_URL": "http://c", "CTI_CC_AGENT_API_KEY": "k"}
    )
    tel = load_settings(
        {"CTI_DIALER": "telephony", "CTI_TELEPHONY_URL": "http://t", "CTI_TELEPHONY_TOKEN": "k"}
    )

    assert (zain.dial_format, zain.agent_provider) == ("national", "sandbox")
    assert (cc.dial_format, cc.agent_provider) == ("international", "cc_agent")
    assert (tel.dial_format, tel.agent_provider) == ("national", "telephony")


def test_allowed_countries_default_to_the_default_region():
    assert load_settings({"CTI_DEFAULT_REGION": "ke"}).allowed_countries == frozenset({"KE"})
    assert load_settings({"CTI_ALLOWED_COUNTRIES": "*"}).allowed_countries is None


def test_dotenv_is_read_and_the_real_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("CTI_DIALER=telephony\nCTI_DEFAULT_REGION=KE\n")
    monkeypatch.setenv("CTI_DEFAULT_REGION", "GB")

    env = read_environment()

    assert env["CTI_DIALER"] == "telephony"
    assert env["CTI_DEFAULT_REGION"] == "GB"


def _start(args, env_overrides, cwd, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    env.update(env_overrides)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "variable,value", [("CTI_DIALER", "asterisk"), ("CTI_JOURNAL_RETENTION", "10w")]
)
def test_wrong_setting_stops_start_up_with_one_line(tmp_path, variable, value):
    result = _start([sys.executable, "-c", "import app"], {variable: value}, tmp_path)

    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert variable in lines[0]


@pytest.mark.slow
def test_gunicorn_halts_instead_of_respawning_a_misconfigured_worker(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    result = _start(
        [str(gunicorn), "app:app", "--workers", "2", "--bind", "127.0.0.1:0", "--chdir", str(ROOT)],
        {"CTI_CACHE_TTL": "-5"},
        tmp_path,
    )

    assert result.returncode != 0
    assert "CTI_CACHE_TTL" in result.stderr
    assert result.stderr.count("configuration error") <= 2  # one per booted worker, no respawn loop


@pytest.mark.parametrize(
    "name,value",
    [
        (
            "CTI_POP_CONTACT_URL",
            "https://crm.example/r/{entity_type}/{id}?n={phone}&c={customer_number}",
        ),
        ("CTI_POP_UNKNOWN_URL", "https://crm.example/new?phone={phone}"),
        ("CTI_POP_UNKNOWN_URL", "crm://open?phone={phone}"),  # a desktop CRM's own scheme
        ("CTI_TOKEN_TTL", str(10 * 366 * 86400)),
        ("CTI_LOOKUP_TIMEOUT", "300.0"),
    ],
)
def test_settings_a_deployment_may_mean_are_taken(name, value):
    settings = load_settings({name: value})

    assert str(getattr(settings, name.removeprefix("CTI_").lower())) == value
