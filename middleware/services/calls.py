"""Click-to-call: policy, dedupe, rate limit, then one upstream call.

The order matters. The destination policy and the dialer's capabilities are checked first (nothing
is claimed for a request that cannot go out). Then the dedupe key (agent + E.164 number) is
claimed in the store: one request owns it, concurrent duplicates wait for the owner's answer and
replay it, later duplicates within ``CTI_DEDUPE_SECONDS`` replay it at once. Only the owner counts
against the agent's rate window and calls the dialer, exactly once, never retried.

A call whose request reached the dialer but whose answer was lost or broken (a success without the
call's id) may have been placed (``UpstreamError.in_doubt``): its problem says so and is remembered
like a placed call, so a second click in the window replays it and dials nothing. A failure that sent nothing is forgotten at once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

from ..directory import AgentDirectory
from ..errors import (
    Conflict,
    Problem,
    RateLimited,
    Unsupported,
    UpstreamError,
    ValidationFailed,
    problem_from_dict,
)
from ..numbers import check_destination, dial_string, e164
from ..runtime import metrics
from ..settings import Settings
from ..store import DONE, FAILED, OWNER, Claims
from ..upstreams import CallRequest, Dialer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
FAILURE_VISIBLE_SECONDS = 10


@dataclass(frozen=True)
class CallOutcome:
    status: int  # 201 placed now, 200 replayed
    body: dict

    @property
    def replayed(self) -> bool:
        return self.status == 200


class ClickToCall:
    def __init__(
        self,
        settings: Settings,
        claims: Claims,
        dialer: Dialer,
        directory: AgentDirectory,
        dnc=None,
        callbacks=None,
    ):
        self.settings = settings
        self.claims = claims  # dedupe keys and rate windows (``store.claims``)
        self.dialer = dialer
        self.directory = directory
        self.dnc = dnc  # the do-not-call list (services/dnc.py), when CTI_DNC_LIST_ID is set
        self.callbacks = callbacks  # services/callbacks.py: a placed call closes its callback
        # The owner holds the dedupe key at most this long; a crashed owner's key frees after it.
        self.lease = settings.upstream_timeout + 10

    def place(self, *, to, agent: str, lead_id: str | None = None, caller_id=None) -> CallOutcome:
        check_destination(to, self.settings.allowed_countries)
        if self.dnc is not None:
            self.dnc.check(to)
        request = self._call_request(to, agent, lead_id, caller_id)
        key = f"dedupe:{request.agent.extension}:{e164(to)}"
        give_up = time.monotonic() + self.lease
        while True:
            claim = self.claims.claim(key, lease=self.lease)
            if claim.state == OWNER:
                return self._place_as_owner(key, claim.token, to, request)
            if claim.state == DONE:
                return _replay(claim.status, claim.body)
            outcome = self._wait_for_owner(key, claim.token, give_up)
            if outcome is not None:
                return outcome

    def _call_request(self, to, extension: str, lead_id, caller_id) -> CallRequest:
        provider = self.dialer.name
        if caller_id is not None and not self.dialer.supports_caller_id:
            raise Unsupported(f"The {provider} dialer cannot set a caller id.")
        if lead_id is not None and not self.dialer.supports_lead_id:
            raise Unsupported(f"The {provider} dialer cannot attach a lead id.")
        agent = self.directory.resolve(extension)
        if getattr(self.dialer, "needs_user_id", False) and not agent.user_id:
            raise ValidationFailed(
                f"Agent {extension} has no user id in the agent directory.",
                errors={"agent": ["Unknown agent: add it to CTI_AGENTS_FILE."]},
            )
        fmt, region = self.settings.dial_format, self.settings.default_region
        return CallRequest(
            dial=dial_string(to, fmt, region),
            agent=agent,
            lead_id=lead_id,
            caller_id=dial_string(caller_id, fmt, region) if caller_id is not None else None,
        )

    def _place_as_owner(self, key: str, token: str, to, request: CallRequest) -> CallOutcome:
        provider = self.dialer.name
        # The rate counts calls placed: this one is counted before it is placed (concurrent clicks
        # of one agent see it), and taken back when it fails without reaching the dialer or is
        # refused by it; one that may have been placed stays counted.
        rate, hit, counted = f"rate:{request.agent.extension}", uuid.uuid4().hex, False
        try:
            wait = self.claims.hit_rate(
                rate,
                limit=self.settings.call_rate.limit,
                window=self.settings.call_rate.window,
                hit=hit,
            )
            if wait:
                raise RateLimited(
                    f"Agent {request.agent.extension} placed {self.settings.call_rate} already.",
                    retry_after=wait,
                )
            counted = True
            call_id = self.dialer.place_call(request)
        except UpstreamError as exc:
            if not exc.in_doubt:
                self._take_back(rate, hit)
                self._forget_failure(key, token, exc, provider)
                raise
            self._remember_in_doubt(key, token, exc, provider, request)
            raise
        except BaseException as exc:
            if counted:
                self._take_back(rate, hit)
            self._forget_failure(
                key, token, exc if isinstance(exc, Problem) else Problem(), provider
            )
            raise
        body = {
            "call_id": call_id,
            "status": "initiated",
            "to": e164(to),
            "dialed": request.dial,
            "agent": request.agent.extension,
            "provider": provider,
        }
        self.claims.complete(
            key, token, status=201, body=json.dumps(body), ttl=self.settings.dedupe_seconds
        )
        metrics.count_call(provider, "initiated")
        log.info("call %s placed by %s for agent %s", call_id, provider, request.agent.extension)
        if self.callbacks is not None:
            self.callbacks.called(to, request.agent.extension)
        return CallOutcome(201, body)

    def _take_back(self, rate: str, hit: str) -> None:
        """Uncount a call that was not placed; the store failing here leaves it counted (the
        agent waits out the window) rather than hiding the call's own failure."""
        try:
            self.claims.take_back_rate(rate, hit)
        except Exception as exc:  # the call's failure is the answer, not this one
            log.warning("could not take back a rate event: %s", type(exc).__name__)

    def _forget_failure(self, key: str, token: str, problem: Problem, provider: str) -> None:
        """Nothing was placed: the waiting duplicates get this failure, later clicks dial again."""
        failure = {"problem": problem.to_dict(), "headers": problem.headers}
        self.claims.fail(key, token, body=json.dumps(failure), ttl=FAILURE_VISIBLE_SECONDS)
        metrics.count_call(provider, problem.code)

    def _remember_in_doubt(
        self, key: str, token: str, exc: UpstreamError, provider: str, request: CallRequest
    ) -> None:
        """The dialer may have placed the call: kept like a placed call for the dedupe window."""
        exc.detail = (
            f"{exc.detail}; the call may have been placed, so another click within "
            f"{self.settings.dedupe_seconds:g} s dials nothing"
        )
        failure = {"problem": exc.to_dict(), "headers": exc.headers}
        self.claims.complete(
            key,
            token,
            status=exc.status,
            body=json.dumps(failure),
            ttl=self.settings.dedupe_seconds,
        )
        metrics.count_call(provider, "in_doubt")
        log.warning(
            "call by %s for agent %s may have been placed: %s",
            provider,
            request.agent.extension,
            exc.detail,
        )

    def _wait_for_owner(self, key: str, token: str, give_up: float) -> CallOutcome | None:
        """The owner's answer, or None when its claim is gone (then the caller claims again)."""
        while time.monotonic() < give_up:
            time.sleep(POLL_SECONDS)
            claim = self.claims.peek(key)
            if claim is None or claim.token != token:
                return None
            if claim.state == DONE:
                return _replay(claim.status, claim.body)
            if claim.state == FAILED:
                failure = json.loads(claim.body)
                raise problem_from_dict(failure["problem"], failure["headers"])
        raise Conflict("The same call is still being placed; try again shortly.")


def _replay(status: int | None, body: str) -> CallOutcome:
    """A remembered answer again: the placed call (200), or the problem of one that may have been
    placed, marked ``replayed`` (the view says so in a header, as for a replayed call)."""
    if status is not None and status >= 400:
        failure = json.loads(body)
        problem = problem_from_dict(failure["problem"], failure["headers"])
        problem.replayed = True
        raise problem
    return CallOutcome(200, json.loads(body))
