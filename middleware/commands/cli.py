"""``flask --app app journal deliver|backfill``, ``agent token``, ``supervisor token``,
``privacy erase`` and ``sandbox floor``: operate from a shell."""

from __future__ import annotations

import contextlib
import json
import logging
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from schemas.agents import AgentPathSchema
from schemas.privacy import NumberPathSchema
from schemas.tokens import SupervisorTokenRequestSchema

from ..api.common import load
from ..errors import Problem
from ..runtime.masking import masked_number

journal_cli = AppGroup("journal", help="The call journal (PBX and IVR calls -> CRM call logs).")

BACKFILL_TIMEOUT = 60.0  # a whole day's call details may take a while to arrive
PROGRESS_LINES = 10  # without a terminal, progress is printed as this many lines


def _services():
    return current_app.extensions["cti"]


@contextlib.contextmanager
def _problem_exits():
    """A problem (a bad argument, a missing setting) ends the command: its detail on stderr, exit
    status 1."""
    try:
        yield
    except Problem as problem:
        click.echo(f"error: {problem.detail}", err=True)
        sys.exit(1)


@journal_cli.command("deliver")
def deliver() -> None:
    """Run one delivery pass over every due entry, then print what happened."""
    outcomes = {"delivered": 0, "retry": 0, "failed": 0}
    while True:
        done = _services().delivery.deliver_due()
        for name, count in done.items():
            outcomes[name] = outcomes.get(name, 0) + count
        if not any(done.values()):
            break
    click.echo(
        f"delivered {outcomes['delivered']}, to retry later {outcomes['retry']},"
        f" failed {outcomes['failed']}"
    )


@journal_cli.command("backfill")
@click.option(
    "--date",
    "day",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day to pull from zain, YYYY-MM-DD.",
)
def backfill(day) -> None:
    """Pull zain's call details of one day into the journal (keyed by callId; reruns add nothing)."""
    services = _services()
    settings = services.settings
    missing = [
        name
        for name, value in (
            ("CTI_ZAIN_URL", settings.zain_url),
            ("CTI_ZAIN_TOKEN", settings.zain_token),
            ("CTI_ZAIN_DOMAIN", settings.zain_domain),
        )
        if not value
    ]
    if missing:
        raise click.ClickException(f"zain is not configured: set {', '.join(missing)}")
    from ..upstreams.base import edge_options
    from ..upstreams.zain import ZainClient

    client = ZainClient(
        settings.zain_url,
        settings.zain_token,
        settings.zain_domain,
        locale=settings.zain_locale,
        **edge_options(settings),
    )
    try:
        calls = client.call_details(
            day.date(), timeout=max(BACKFILL_TIMEOUT, settings.upstream_timeout)
        )
    except Problem as exc:
        raise click.ClickException(f"zain: {exc.detail}") from None
    finally:
        client.close()

    label = f"backfill {day:%Y-%m-%d}"
    counts = {True: 0, False: 0, None: 0}
    interactive = sys.stdout.isatty()
    step = max(1, len(calls) // PROGRESS_LINES)
    with click.progressbar(calls, label=label, show_pos=True, hidden=not interactive) as bar:
        for done, call in enumerate(bar, start=1):
            counts[services.journal.record_zain(call)] += 1
            if not interactive and (done % step == 0 or done == len(calls)):
                click.echo(f"{label}: {done}/{len(calls)}")
    click.echo(
        f"{len(calls)} call(s): {counts[True]} new, {counts[False]} already in the journal,"
        f" {counts[None]} unreadable (skipped)"
    )
    if counts[None]:
        sys.exit(1)


agent_cli = AppGroup("agent", help="Agents: tokens for the /agent page and the browser extension.")


@agent_cli.command("token")
@click.argument("extension")
def agent_token(extension: str) -> None:
    """Print a token that acts as agent EXTENSION for CTI_TOKEN_TTL seconds (needs CTI_TOKEN_SECRET)."""
    with _problem_exits():
        services = _services()
        path = AgentPathSchema(directory=services.directory)
        token, _ = services.credentials.issue(load(path, {"extension": extension})["extension"])
    click.echo(token)


supervisor_cli = AppGroup("supervisor", help="Supervisors: tokens for the /console page.")


@supervisor_cli.command("token")
@click.argument("name")
def supervisor_token(name: str) -> None:
    """Print a supervisor token for NAME, valid CTI_TOKEN_TTL seconds (needs CTI_TOKEN_SECRET)."""
    with _problem_exits():
        name = load(SupervisorTokenRequestSchema(), {"name": name})["name"]
        token, _ = _services().credentials.issue_supervisor(name)
    click.echo(token)


sandbox_cli = AppGroup("sandbox", help="The sandbox (CTI_CRM=sandbox, CTI_AGENT_PROVIDER=sandbox).")


@sandbox_cli.command("floor")
def sandbox_floor() -> None:
    """Seed a believable floor for `make run`: agents in several states and today's calls, one
    missed (a callback) and one whose log the sandbox CRM refuses (a failed log). Sent through our
    own API, as a CRM and a PBX would send them; again the same day, it adds nothing."""
    from .sandbox_floor import floor_requests

    settings = _services().settings
    if settings.crm != "sandbox" or settings.agent_provider != "sandbox":
        raise click.ClickException(
            "the floor is sample data for the sandbox only: set CTI_CRM=sandbox and"
            " CTI_AGENT_PROVIDER=sandbox (its calls would reach a real CRM)"
        )
    if not settings.api_keys or not settings.webhook_secret:
        raise click.ClickException("the floor needs CTI_API_KEYS and CTI_WEBHOOK_SECRET")
    app = current_app._get_current_object()
    app.config["JOURNAL_BACKGROUND"] = False  # the server delivers; this process only records
    logging.getLogger("middleware").setLevel(logging.WARNING)  # our own requests, not news
    client = app.test_client()
    refused = []
    for request in floor_requests():
        if request.webhook:
            headers = {"X-Webhook-Token": settings.webhook_secret}
        else:
            headers = {"X-API-Key": settings.api_keys[0]}
        response = client.open(
            request.path, method=request.method, json=request.body, headers=headers
        )
        if response.status_code >= 300:
            refused.append(f"{request.method} {request.path}: {response.status_code}")
    if refused:
        raise click.ClickException("the floor was refused: " + "; ".join(refused))
    click.echo("sandbox floor: 4 agents, 6 calls today (1 missed, 1 whose log the CRM refuses)")


privacy_cli = AppGroup("privacy", help="Privacy requests by phone number.")


@privacy_cli.command("erase")
@click.option("--phone", required=True, help="The number, in any common form.")
def privacy_erase(phone: str) -> None:
    """Erase everything stored about a number (as DELETE /api/v1/privacy/numbers/{phone} does)
    and print the counts, with the number masked as log lines write it."""
    services = _services()
    with _problem_exits():
        number = load(NumberPathSchema(region=services.settings.default_region), {"phone": phone})
        erased = services.privacy.erase(number["phone"])
    click.echo(json.dumps({**erased, "number": masked_number(erased["number"])}))
