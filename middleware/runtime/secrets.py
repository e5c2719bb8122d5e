"""Keep credentials out of every log line and error text, and whole phone numbers out of logs.

Some upstreams take their key in the query string, so a URL in a log record or an exception text
would leak it. Every secret the process holds is registered here at start-up, and a log-record
factory scrubs each record (message, arguments and traceback) as it is made, so no handler, ours or
a library's, ever sees the secret. The same factory masks the phone numbers of every record
(``masking.py``): ``scrub_log`` is the one function both it and ``logs.JsonFormatter`` apply.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from urllib.parse import quote, quote_plus

from .masking import mask

MASK = "***"
# ``make run``'s token secret (middleware/commands/dev.py): public, so start-up warns while it signs tokens.
DEVELOPMENT_TOKEN_SECRET = "dev-token-secret-for-make-run-only"  # noqa: S105 - public on purpose
# An agent token (a JWT: base64url header "eyJ...", payload and signature) is a credential too,
# though no list holds it: each agent has its own.
_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_secrets: tuple[str, ...] = ()
_lock = threading.Lock()
_installed = False


def register(values) -> None:
    """Add secrets (and their URL-encoded spellings) to the scrub list."""
    global _secrets
    spellings = set()
    for value in values:
        if value and len(value) >= 3:
            spellings.update({value, quote(value, safe=""), quote_plus(value)})
    with _lock:
        merged = set(_secrets) | spellings
        # Longest first, so a secret that contains another is masked whole.
        _secrets = tuple(sorted(merged, key=len, reverse=True))


def registered() -> tuple[str, ...]:
    """The secrets registered now: a new tuple whenever the list changes, so a memo of scrubbed
    text (``logs``' request lines) that keeps the tuple it was made with knows when it is stale."""
    return _secrets


def scrub(text):
    if not isinstance(text, str):
        return text
    if "eyJ" in text:
        text = _TOKEN.sub(MASK, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_log(text):
    """A text as a log line may hold it: credentials scrubbed, phone numbers masked."""
    if not isinstance(text, str):
        return text
    return mask(scrub(text))


def install_log_scrubber() -> None:
    """Wrap the log-record factory once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: keep its raw text
            message = str(record.msg)
        record.msg, record.args = scrub_log(message), None
        record.cti_scrubbed = record.msg  # the formatter need not scrub this text again
        if record.exc_info and record.exc_info[0] is not None:
            exception = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_text = scrub_log(exception)
        return record

    logging.setLogRecordFactory(factory)
