"""The application factory: settings, store, upstream clients and services, built once."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from flask import Flask, current_app

from schemas.callbacks import CallbackSchema
from schemas.journal import PbxEventSchema

from .api import (
    agent_page,
    agents,
    calls,
    console_page,
    contacts,
    events,
    headers,
    ops,
    privacy,
    reports,
    schedule,
    tokens,
    webhooks,
)
from .api import board as board_api
from .api import callbacks as callbacks_api
from .api import journal as journal_api
from .api.lookup_hits import LookupHits
from .api.streams import redirect_to_stream_server
from .auth import Credentials, authenticate
from .commands.cli import agent_cli, journal_cli, privacy_cli, sandbox_cli, supervisor_cli
from .commands.store_cli import store_cli
from .directory import AgentDirectory
from .errors import (
    UpstreamAuth,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    register_error_handlers,
)
from .lookup.shared_cache import build_shared_cache
from .runtime import logs, metrics, secrets
from .runtime.credential_slots import CredentialSlots
from .runtime.jsontext import BoundedJSONProvider
from .runtime.wsgi import MAX_CONTENT_LENGTH, Request, refuse_oversized_body
from .services.agents import AgentControl, Schedule
from .services.board import Board, BoardStream
from .services.callbacks import Callbacks
from .services.calls import ClickToCall
from .services.deliverer import Deliverer
from .services.delivery import Delivery
from .services.dnc import build_dnc
from .services.events import EventHub, ScreenPops
from .services.journal import Journal
from .services.lookup import Lookup
from .services.privacy import Privacy
from .services.reports import CallReports
from .services.retention import Purge, Purger, parts
from .services.rings import Rings
from .services.sandbox_calls import SandboxCalls
from .settings import Settings, SettingsError, load_settings, read_environment
from .store import Store, build_store
from .upstreams import Dialer, build_agent_provider, build_dialer
from .upstreams.crm import Crm, build_crm
from .upstreams.ibizfone import build_ibizfone

log = logging.getLogger("middleware")

CONFIG_ERROR_EXIT = 3  # gunicorn halts (no respawn) when a worker exits 3 while booting

# What a view meets beyond this process: an upstream's failures, or the store's (PostgreSQL or
# Redis down answers 503 ``upstream_unavailable``).
UPSTREAM = (UpstreamError, UpstreamAuth, UpstreamUnavailable, UpstreamTimeout)
STORE = (UpstreamUnavailable,)
# Every blueprint, registered once in this order, with what its views reach: the OpenAPI document
# derives their 502/503/504 answers from it (``app.extensions["cti_reaches"]``).
BLUEPRINTS = (
    (calls.bp, UPSTREAM),  # the dialer (and the store: idempotency, dedupe, rate)
    (ops.bp, ()),  # /readyz declares its own 503
    (contacts.bp, UPSTREAM),  # the CRM
    (agents.bp, UPSTREAM),  # the agent provider
    (schedule.bp, UPSTREAM),  # the IVR's settings
    (webhooks.bp, STORE),
    (webhooks.ivr, STORE),  # answers in plain text: its own responses say how
    (journal_api.bp, STORE),
    (privacy.bp, STORE),
    (events.bp, STORE),
    (board_api.bp, STORE),
    (reports.bp, STORE),
    (agent_page.bp, ()),
    (console_page.bp, ()),
    (tokens.bp, ()),
    (callbacks_api.bp, STORE),
)


@dataclass
class Services:
    """Everything a view may use, kept in ``app.extensions["cti"]``."""

    settings: Settings
    store: Store
    directory: AgentDirectory
    dialer: Dialer
    calls: ClickToCall
    agents: AgentControl
    schedule: Schedule
    crm: Crm
    lookup: Lookup
    journal: Journal | None = None
    deliverer: Deliverer | None = None  # started by the first request a worker serves
    delivery: Delivery | None = None  # one delivery pass: ``deliver_due`` (the deliverer's work)
    purger: Purger | None = None  # retention's passes, started with the deliverer
    screen_pops: ScreenPops | None = None
    credentials: Credentials | None = None  # the keys and token secret (auth.authenticate)
    stream_slots: CredentialSlots | None = None  # CTI_STREAMS_PER_CREDENTIAL, on this host
    callbacks: Callbacks | None = None
    privacy: Privacy | None = None  # access and erasure by number
    board: Board | None = None  # the supervisor's board
    board_stream: BoardStream | None = None
    reports: CallReports | None = None


def build_app(test_config=None) -> Flask:
    secrets.install_log_scrubber()
    try:
        settings = load_settings(read_environment(test_config))
        directory = AgentDirectory.from_csv(settings.agents_file)
    except SettingsError as exc:
        print(f"cti-middleware: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_ERROR_EXIT) from None
    secrets.register(settings.secrets())
    _configure_logging()
    metrics.setup()
    if not settings.api_keys:
        others = (
            " (CTI_LOOKUP_KEYS and agent tokens are refused too)"
            if settings.lookup_keys or settings.token_secret
            else ""
        )
        log.warning("CTI_API_KEYS is not set: every protected endpoint answers 401%s", others)
    if not settings.webhook_secret:
        log.warning("CTI_WEBHOOK_SECRET is not set: every webhook answers 401")
    if settings.token_secret and len(settings.token_secret.encode()) < 32:
        log.warning("CTI_TOKEN_SECRET is shorter than 32 bytes: agent tokens are easier to forge")
    if settings.token_secret == secrets.DEVELOPMENT_TOKEN_SECRET:
        log.warning(
            "tokens are signed with the development secret; set CTI_TOKEN_SECRET in production"
        )

    app = Flask(__name__)
    app.request_class = Request  # query and form bytes that are not UTF-8 stay visible
    app.json = BoundedJSONProvider(app)  # a body nested too deep is malformed, never parsed
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH  # refuse_oversized_body: 64 KiB
    app.json.sort_keys = False

    store = build_store(settings)
    dialer = build_dialer(settings)
    crm = build_crm(settings, store.sandbox)
    lookup = Lookup(settings, crm, shared=build_shared_cache(settings), erasures=store.erasures)
    callbacks = Callbacks(
        store.callbacks, store.events, CallbackSchema().dump, region=settings.default_region
    )
    delivery = Delivery(settings, store.journal, crm, lookup, callbacks=callbacks)
    deliverer = Deliverer(delivery)
    rings = Rings(settings, store.events, directory, lookup)
    board = Board(settings, store.board, store.events, store.reports, directory)
    journal = Journal(
        settings, store.journal, directory, rings, board=board, on_stored=deliverer.wake
    )
    if dialer.name == "sandbox":  # make run: click, ring, pop, journal entry
        dialer.on_placed = SandboxCalls(journal, PbxEventSchema().load).play
    region = settings.default_region
    screen_pops = ScreenPops(
        EventHub(store.events),
        lookup,
        region,
        streams_per_worker=settings.streams_per_worker,
        status_of=board.entry,
    )
    app.extensions["cti"] = Services(
        settings=settings,
        store=store,
        directory=directory,
        dialer=dialer,
        calls=ClickToCall(
            settings, store.claims, dialer, directory, dnc=build_dnc(settings), callbacks=callbacks
        ),
        agents=AgentControl(
            settings, store.claims, build_agent_provider(settings), directory, board=board
        ),
        schedule=Schedule(build_ibizfone(settings)),
        crm=crm,
        lookup=lookup,
        journal=journal,
        deliverer=deliverer,
        delivery=delivery,
        purger=Purger(Purge(store.retention, parts(settings, store))),
        screen_pops=screen_pops,
        credentials=Credentials.from_settings(settings),
        stream_slots=CredentialSlots(settings.streams_per_credential),
        callbacks=callbacks,
        privacy=Privacy(store, lookup),
        board=board,
        board_stream=BoardStream(screen_pops.hub, screen_pops.slots, board),
        reports=CallReports(settings, store.reports),
    )

    register_error_handlers(app)
    hooks = (
        app.before_request(_before_request),
        app.after_request(_after_request(headers.by_rule(settings))),
    )
    for blueprint, _ in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # The lookup's fresh hits answered before Flask, as the normal path answers them.
    app.wsgi_app = LookupHits(app, app.wsgi_app, hooks, lambda: _start_background(app))
    app.extensions["cti_reaches"] = {blueprint.name: reaches for blueprint, reaches in BLUEPRINTS}
    app.cli.add_command(journal_cli)
    app.cli.add_command(agent_cli)
    app.cli.add_command(supervisor_cli)
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(store_cli)
    app.cli.add_command(privacy_cli)
    return app


def _before_request():
    """One hook, in order: time and name the request (so refused ones are logged too), refuse a
    body over 64 KiB however it is sent (``wsgi.refuse_oversized_body``), start this
    worker's journal deliverer and retention (tests drive both themselves unless they set
    ``JOURNAL_BACKGROUND``), send a stream path to the stream server when one is set, then check
    the credential.

    The background threads start here, at a process's first request, because that is the one
    moment every way of serving shares (gunicorn with or without ``gunicorn.conf.py``, with
    ``--preload``, ``flask run``): started when the app is built, they would run in a ``--preload``
    master when it forks (its workers hung on the locks the threads held: measured) and in every
    ``flask`` command. After the first request it costs one attribute read (``ensure_started``)."""
    logs.start()
    refuse_oversized_body()
    app = current_app._get_current_object()
    services = _start_background(app)
    if services.settings.stream_url:  # else nothing is sent to a stream server
        redirect = redirect_to_stream_server()
        if redirect is not None:
            return redirect
    authenticate()
    return None


def _start_background(app: Flask) -> Services:
    """Start this worker's journal deliverer and retention (``_before_request``); its services."""
    services = app.extensions["cti"]
    if services.deliverer is not None and app.config.get("JOURNAL_BACKGROUND", not app.testing):
        services.deliverer.ensure_started()
        services.purger.ensure_started()
    return services


def _after_request(add_headers):
    def after_request(response):
        """One hook, in order: the headers each kind of answer carries (``api/headers.py``), then
        the request's id, metrics and log line (``logs.finish``, last, so its time counts all)."""
        return logs.finish(add_headers(response))

    return after_request


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logs.JsonFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
