"""The sandbox's calls ring and end like real ones, so ``make run`` shows the whole loop.

When the sandbox dialer places a call, this plays the cc_agent events a PBX would push for it
(``call:ring`` for the agent, then ``call:end`` of an answered outbound call) through the same
schema and journal service as the PBX webhook: click, ring, screen pop, journal entry. The
schema's ``load`` is given by the factory (services never import ``schemas/``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..upstreams import CallRequest

log = logging.getLogger(__name__)

RING_AFTER = 0.5  # seconds after the click
TALK_SECONDS = 3.0


class SandboxCalls:
    def __init__(
        self,
        journal,
        load_event: Callable[[dict], dict],
        *,
        ring_after: float = RING_AFTER,
        talk: float = TALK_SECONDS,
    ):
        self.journal = journal
        self.load_event = load_event  # the PBX webhook's schema: what the journal is given
        self.ring_after = ring_after
        self.talk = talk

    def play(self, call: CallRequest, call_id: str) -> None:
        """Schedule the ring and the end of ``call`` (background timers; the click answers now)."""
        agent = call.agent
        customer = call.dial.lstrip("+")
        ring = {
            "event": "call:ring",
            "id": call_id,  # one leg: it rings, then ends
            "call_id": call_id,
            "type": "outbound",
            "cid_num": customer,
            "dst_num": agent.extension,
            "dst_user_id": agent.user_id or agent.extension,
        }
        timer = threading.Timer(self.ring_after, self._push, args=(ring,))
        timer.daemon = True
        timer.start()
        end_timer = threading.Timer(self.ring_after + self.talk, self._end, args=(call, call_id))
        end_timer.daemon = True
        end_timer.start()

    def _end(self, call: CallRequest, call_id: str) -> None:
        talk_ms = int(self.talk * 1000)
        self._push(
            {
                "event": "call:end",
                "id": call_id,
                "call_id": call_id,
                "ts": int(time.time()),
                "type": "outbound",
                "src_user_id": call.agent.user_id or call.agent.extension,
                "dst_num": call.dial.lstrip("+"),
                "durationms": talk_ms + int(self.ring_after * 1000),
                "billms": talk_ms,
                "hangup_cause": "NORMAL_CLEARING",
            }
        )

    def _push(self, raw: dict) -> None:
        try:
            self.journal.pbx_event(self.load_event(raw))
        except Exception:
            log.exception("sandbox: could not play %s", raw.get("event"))
