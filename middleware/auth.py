"""Who may call what: one check for the three kinds of credential, the webhook secret for webhooks.

A protected route takes a credential as ``X-API-Key``, ``Authorization: Bearer`` or ``?api_key=``:
a full key (``CTI_API_KEYS``: everything), a lookup key (``CTI_LOOKUP_KEYS``: what a PBX dialplan
holds), an agent token (a JWT signed with ``CTI_TOKEN_SECRET`` that acts as its one agent: what an
agent's browser holds) or a supervisor token (the same signing, scope ``supervisor``: watch and
follow up, never dial or act as an agent). Each view declares, next to its route, what a lookup
key, an agent token and a supervisor token may do there (``@allow``); a view without a declaration is full-key only, and a route is protected unless
its view says otherwise (``public`` or ``webhook``), so a new route cannot be left open by mistake.
``authenticate`` applies the declaration before the view runs, so a refused request reaches no
upstream and claims nothing in the store (rate limit, dedupe, idempotency).

Keys are compared in constant time (against every configured key, whichever matches); a key that
matched is remembered by its text, so the lookup hot path pays one dictionary look-up.
Tokens are checked by signature and ``exp`` alone, without the store: every host that shares the
secret accepts them, and changing the secret revokes them all.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import jwt
from flask import current_app, g, request

from .errors import Forbidden, Unauthorized, Unsupported

PUBLIC, WEBHOOK, API_KEY = "public", "webhook", "api_key"
FULL, LOOKUP, AGENT, SUPERVISOR = "full", "lookup", "agent", "supervisor"  # kinds of principal
# Where a view names the agent an agent token must be: the path's ``extension``, the JSON body's
# ``agent``, the query's ``agent``; or ANY_AGENT: any agent's token may (lookups, contacts).
IN_PATH, IN_BODY, IN_QUERY, ANY_AGENT = "path", "body", "query", "any"
ALGORITHM = "HS256"  # fixed: a token naming another algorithm (or "none") is refused
# The ``scope`` claim of each kind of token, and the kind it names.
TOKEN_SCOPES = {"agent": AGENT, "supervisor": SUPERVISOR}
# A token valid for longer than this past CTI_TOKEN_TTL is refused, whoever signed it: a token
# made by hand with a leaked (or the development) secret cannot outlive the configured lifetime.
CLOCK_LEEWAY = 60
TOKEN_MEMO = 4096  # valid tokens a process remembers (each until its ``exp``); then it starts over

NO_CREDENTIAL = "A valid API key or agent token is required (X-API-Key, Bearer token or api_key)."


@dataclass(frozen=True)
class Access:
    """What a route lets the restricted kinds do (a full key may do everything)."""

    lookup: bool = False  # a lookup key may
    agent: str | None = None  # IN_PATH, IN_BODY, IN_QUERY, ANY_AGENT; None: no agent token
    supervisor: bool = False  # a supervisor token may

    def credentials(self) -> list[str]:
        """The kinds that may call the route, for the OpenAPI description."""
        kinds = ["full API key (CTI_API_KEYS)"]
        if self.lookup:
            kinds.append("lookup key (CTI_LOOKUP_KEYS)")
        if self.agent == ANY_AGENT:
            kinds.append("agent token")
        elif self.agent is not None:
            where = {
                IN_PATH: "the path's `extension`",
                IN_BODY: "the body's `agent`",
                IN_QUERY: "the query's `agent`",
            }[self.agent]
            kinds.append(f"agent token whose agent is {where} (and no `caller_id`)")
        if self.supervisor:
            kinds.append("supervisor token")
        return kinds


FULL_ONLY = Access()
OWN_AGENT_PATH = Access(agent=IN_PATH)  # the agent's own /api/v1/agents/{extension}/... routes
SUPERVISORS = Access(supervisor=True)  # the console's board, its stream and the reports


def public(view):
    view.cti_auth = PUBLIC
    return view


def webhook(view):
    view.cti_auth = WEBHOOK
    return view


def allow(
    access: Access | None = None,
    *,
    lookup: bool = False,
    agent: str | None = None,
    supervisor: bool = False,
):
    """Declare what a lookup key, an agent token and a supervisor token may do on this view
    (default: nothing)."""
    declared = access or Access(lookup=lookup, agent=agent, supervisor=supervisor)

    def decorate(view):
        view.cti_access = declared
        return view

    return decorate


def access_of(view) -> Access:
    return getattr(view, "cti_access", FULL_ONLY)


def auth_kind(view) -> str:
    """``public``, ``webhook`` or ``api_key`` (the default: a route is protected unless it says)."""
    return getattr(view, "cti_auth", API_KEY)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. ``client_id`` is a stable, non-secret name (scopes Idempotency-Keys);
    ``agent`` is an agent token's extension, ``name`` a supervisor token's name."""

    kind: str
    client_id: str
    agent: str | None = None
    name: str | None = None


class Credentials:
    """The keys and the token secret of one app: turns a presented string into a ``Principal``."""

    def __init__(
        self,
        api_keys: tuple[str, ...] = (),
        lookup_keys: tuple[str, ...] = (),
        token_secret: str | None = None,
        token_ttl: int = 43200,
    ):
        self._keys = tuple((key.encode(), FULL) for key in api_keys) + tuple(
            (key.encode(), LOOKUP) for key in lookup_keys
        )
        self._secret = token_secret
        self.token_ttl = token_ttl
        # Each configured key, once presented, by its text: at most one entry per key, whatever
        # strings are tried against it (a miss is checked afresh and never remembered).
        self._known: dict[str, Principal] = {}
        # Each valid token, once checked, by its text, until its ``exp``: an agent's page asks
        # with the same token all day, and a signature check costs some 70 us.
        self._tokens: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_settings(cls, settings) -> Credentials:
        """Without ``CTI_API_KEYS`` every protected endpoint answers 401 (contract, section 1):
        lookup keys and agent tokens are then refused too, not only the full keys."""
        if not settings.api_keys:
            return cls(token_ttl=settings.token_ttl)
        return cls(
            settings.api_keys, settings.lookup_keys, settings.token_secret, settings.token_ttl
        )

    def principal(self, presented: str | None) -> Principal:
        """The principal ``presented`` authenticates; ``Unauthorized`` when it is none."""
        if not presented:
            raise Unauthorized(NO_CREDENTIAL)
        principal = self._known.get(presented)
        if principal is not None:
            return principal
        principal = self._match_key(presented)
        if principal is not None:
            self._known[presented] = principal
            return principal
        if self._secret is None or presented.count(".") != 2 or not presented.isascii():
            raise Unauthorized(NO_CREDENTIAL)
        remembered = self._tokens.get(presented)
        if remembered is not None and time.time() < remembered[1]:
            return remembered[0]
        principal, expires = self._token_principal(presented)
        if len(self._tokens) >= TOKEN_MEMO:
            self._tokens.clear()
        self._tokens[presented] = (principal, expires)
        return principal

    def issue(self, extension: str, *, now: float | None = None) -> tuple[str, float]:
        """A token that acts as agent ``extension`` for ``CTI_TOKEN_TTL`` seconds, and its expiry."""
        return self._sign(extension, "agent", now)

    def issue_supervisor(self, name: str, *, now: float | None = None) -> tuple[str, float]:
        """A supervisor token for ``name``, valid ``CTI_TOKEN_TTL`` seconds, and its expiry."""
        return self._sign(name, "supervisor", now)

    def _sign(self, subject: str, scope: str, now: float | None) -> tuple[str, float]:
        if self._secret is None:
            raise Unsupported("Tokens are not enabled: set CTI_TOKEN_SECRET.")
        issued = int(time.time() if now is None else now)
        expires = issued + self.token_ttl
        claims = {"sub": subject, "scope": scope, "iat": issued, "exp": expires}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), float(expires)

    def _match_key(self, presented: str) -> Principal | None:
        given = presented.encode("utf-8", "surrogatepass")  # a query's bad bytes (wsgi.py)
        found = None
        for key, kind in self._keys:  # every key is compared: the time does not tell which matched
            if hmac.compare_digest(given, key):
                found = Principal(kind, _client_id(presented))
        return found

    def _token_principal(self, token: str) -> tuple[Principal, float]:
        """The token's principal and its ``exp`` (valid while the clock is before it, as PyJWT
        checks it)."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired; sign in again.") from None
        except jwt.InvalidTokenError:
            raise Unauthorized(NO_CREDENTIAL) from None
        subject, kind = claims["sub"], TOKEN_SCOPES.get(claims.get("scope"))
        if kind is None or not isinstance(subject, str) or not subject:
            raise Unauthorized(NO_CREDENTIAL)
        if claims["exp"] > time.time() + self.token_ttl + CLOCK_LEEWAY:
            raise Unauthorized("The token outlives CTI_TOKEN_TTL; sign in again.")
        expires = float(claims["exp"])
        if kind == SUPERVISOR:
            return Principal(SUPERVISOR, f"supervisor:{subject}", name=subject), expires
        return Principal(AGENT, f"agent:{subject}", subject), expires


def presented_credential(
    headers: Mapping[str, str], api_key: str | Callable[[], str | None] | None
) -> str | None:
    """The credential of a request: header ``X-API-Key``, else ``Authorization: Bearer``, else the
    query's ``api_key`` (a value, or a function that reads it). Each is read only when the one
    before carries nothing: the hot path reads one header and never parses the query string."""
    key = headers.get("X-API-Key")
    if key:
        return key
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if callable(api_key):
        api_key = api_key()
    return api_key or None


def permit(principal: Principal, access: Access, named: Callable[[], tuple[object, bool]]) -> None:
    """Raise ``Forbidden`` unless ``principal`` may use a route declared ``access``. ``named`` gives
    the agent the request acts as and whether it sets a ``caller_id`` (read only for a token)."""
    if principal.kind == FULL:
        return
    if principal.kind == LOOKUP:
        if access.lookup:
            return
        raise Forbidden("A lookup key may only look callers up (/api/v1/contacts/lookup, /pop).")
    if principal.kind == SUPERVISOR:
        if access.supervisor:
            return
        raise Forbidden("A supervisor token may watch and follow up, not do this.")
    if access.agent is None:
        raise Forbidden("An agent token may not do this; it takes a full API key.")
    if access.agent == ANY_AGENT:
        return
    agent, caller_id = named()
    if caller_id:
        raise Forbidden("An agent token may not set a caller_id.")
    if agent != principal.agent:
        raise Forbidden(f"This agent token acts as agent {principal.agent} only.")


def stream_principal(
    credentials: Credentials,
    extension: str | None,
    *,
    x_api_key: str | None = None,
    authorization: str | None = None,
    api_key: str | None = None,
    access: Access = OWN_AGENT_PATH,
) -> Principal:
    """The check of a stream (``GET /api/v1/agents/{extension}/events``; with ``access``
    ``SUPERVISORS``, ``GET /api/v1/board/events``), for a server without a Flask request: the
    ``X-API-Key`` and ``Authorization`` headers and the ``api_key`` query value as presented, and
    the path's extension. Returns the principal or raises ``Unauthorized`` (401) or ``Forbidden``
    (403: a lookup key, another agent's token, a token the route's access does not admit)."""
    headers = {"X-API-Key": x_api_key, "Authorization": authorization}
    principal = credentials.principal(presented_credential(headers, api_key))
    permit(principal, access, lambda: (extension, False))
    return principal


def authenticate() -> None:
    """before_request hook: check the credential the matched view asks for, and what it may do."""
    current = request._get_current_object()  # one proxy look-up for the request's reads
    if current.url_rule is None:
        return  # 404 or 405 follow, answered without a credential
    app = current_app._get_current_object()
    endpoint = current.endpoint
    view = app.view_functions.get(endpoint)
    kind = auth_kind(view)
    if kind == PUBLIC or endpoint == "static":
        return
    services = app.extensions["cti"]
    context = g._get_current_object()
    if kind == WEBHOOK:
        token = current.headers.get("X-Webhook-Token") or current.args.get("token")
        secret = services.settings.webhook_secret
        if (
            not secret
            or not token
            or not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), secret.encode())
        ):
            raise Unauthorized("A valid webhook token is required.")
        context.client_id = "webhook"
        return
    presented = presented_credential(current.headers, _query_api_key)
    principal = services.credentials.principal(presented)
    if principal.kind != FULL:  # a full key may do everything: the hot path stops here
        access = access_of(view)
        permit(principal, access, lambda: _named_agent(access.agent))
    context.client_id = principal.client_id
    context.principal = principal


def current_principal() -> Principal:
    """Who the request acts as (set by ``authenticate``), for a service that answers each kind
    differently (an agent token sees its own callbacks)."""
    return g.principal


def _query_api_key() -> str | None:
    return request.args.get("api_key")


def _named_agent(where: str) -> tuple[object, bool]:
    """The agent this request acts as, in its one spelling (``07602`` is agent 7602, as the view's
    schema will load it; None when it names no agent), and whether it sets a caller id."""
    agent, caller_id = _named_as_sent(where)
    return current_app.extensions["cti"].directory.spelling(agent), caller_id


def _named_as_sent(where: str) -> tuple[object, bool]:
    """The agent as the request writes it. The body is parsed once: Flask keeps the parsed JSON
    for the view."""
    if where == IN_PATH:
        return (request.view_args or {}).get("extension"), False
    if where == IN_QUERY:
        return request.args.get("agent"), "caller_id" in request.args
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        return None, False
    return body.get("agent"), "caller_id" in body


@lru_cache(maxsize=64)
def _client_id(key: str) -> str:
    """A stable, non-secret name for the key that authenticated (scopes Idempotency-Keys)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
