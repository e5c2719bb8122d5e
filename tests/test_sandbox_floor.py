"""``flask --app app sandbox floor`` (what ``make run`` seeds): sample agents and today's calls sent
through our own API, so the console has a floor to show: calls that reach the CRM, one missed
call, one call log the sandbox CRM refuses. Only ever with the sandbox CRM and agent provider."""

from __future__ import annotations

from middleware.upstreams.sandbox_crm import REFUSED_NUMBER

from .conftest import API_KEY

SANDBOX = {"CTI_DIALER": "sandbox", "CTI_CRM": "sandbox", "CTI_JOURNAL_SETTLE_SECONDS": "0"}


def journal(client, **query) -> list[dict]:
    response = client.get("/api/v1/journal", query_string=query, headers={"X-API-Key": API_KEY})
    assert response.status_code == 200
    return response.get_json()["entries"]


def test_the_floor_records_todays_calls_one_missed_and_one_the_crm_refuses(make_app):
    app = make_app(**SANDBOX)
    runner = app.test_cli_runner()

    seeded = runner.invoke(args=["sandbox", "floor"])
    delivered = runner.invoke(args=["journal", "deliver"])

    assert seeded.exit_code == 0, seeded.output
    assert delivered.output.strip() == "delivered 5, to retry later 0, failed 1"
    entries = {entry["call_log"]["Number"]: entry for entry in journal(app.test_client())}
    assert len(entries) == 5  # James May called twice: six calls, five numbers
    failed = entries[REFUSED_NUMBER]
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["last_error"] == "sandbox: the CRM refused the call log: no such account"
    missed = entries["+27317654321"]
    assert (missed["status"], missed["call_log"]["CallType"]) == ("delivered", "Missed")
    assert missed["call_log"]["Name"] == "Cape Fruit Exporters"
    types = sorted(entry["call_log"]["CallType"] for entry in journal(app.test_client()))
    assert types == ["Inbound", "Inbound", "Inbound", "Missed", "Outbound", "Outbound"]


def test_the_floor_again_the_same_day_adds_nothing(make_app):
    app = make_app(**SANDBOX)
    runner = app.test_cli_runner()

    assert runner.invoke(args=["sandbox", "floor"]).exit_code == 0
    assert runner.invoke(args=["sandbox", "floor"]).exit_code == 0

    assert len(journal(app.test_client(), limit=100)) == 6


def test_the_floor_refuses_to_run_against_a_real_crm(make_app):
    app = make_app(
        CTI_DIALER="sandbox",
        CTI_CRM="switchtransact",
        CTI_CRM_URL="http://127.0.0.1:9",
        CTI_CRM_API_KEY="crm-key",
    )

    result = app.test_cli_runner().invoke(args=["sandbox", "floor"])

    assert result.exit_code == 1
    assert "sandbox only: set CTI_CRM=sandbox" in result.output
    assert journal(app.test_client()) == []
