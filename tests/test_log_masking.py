"""Contract section 4: a log line never holds a whole phone number; each is written with every
digit but its last four masked (``middleware/runtime/masking.py``), by every handler of the process."""

from __future__ import annotations

import io
import json
import logging

import pytest

from middleware.runtime.logs import JsonFormatter, fields
from middleware.runtime.masking import mask, masked_number


@pytest.mark.parametrize(
    ("written", "logged"),
    [
        ("+27721234567", "+27*******4567"),  # the contract's example
        ("%2B27721234567", "%2B27*******4567"),
        ("%252B27721234567", "%252B27*******4567"),
        ("0721234567", "******4567"),
        ("072 123 4567", "*** *** 4567"),
        ("072+123+4567", "***+***+4567"),
        ("072%20123%204567", "***%20***%204567"),
        ("%2B27%2072%20123%204567", "%2B**%20**%20***%204567"),
        ("27721234567", "*******4567"),
        ("0027721234567", "*********4567"),
        ("(072) 123-4567", "(***) ***-4567"),
        ("+44 7911 123456", "+** **** **3456"),
        ("phone=0721234567&x=1", "phone=******4567&x=1"),
        ("sip:0721234567@pbx", "sip:******4567@pbx"),
        ('{"cid_num": "0721234567"}', '{"cid_num": "******4567"}'),
        ("0721234", "***1234"),  # too short to be valid: masked all the same
        ("072123456789", "********6789"),  # too long to be valid
        ("072\u00a0123\u00a04567", "***\u00a0***\u00a04567"),  # no-break spaces
        ("072\u2013123\u20134567", "***\u2013***\u20134567"),  # en dashes
        # Two numbers side by side are one run longer than a number: no whole number is left.
        ("A +27721234567 (0721234567) rejected", "A +*********** (******4567) rejected"),
        ("0721234567 0731234567", "********** ******4567"),
        ("+27721234567 +27731234567", "+*********** +*******4567"),
        ("0721234567-0731234567", "**********-******4567"),
        ("123456789012345678", "**************5678"),  # longer than any number: an id, masked
    ],
)
def test_every_spelling_of_a_number_is_masked_but_its_last_four_digits(written, logged):
    assert mask(written) == logged


@pytest.mark.parametrize(
    "text",
    [
        "GET /api/v1/contacts/lookup 200",
        "5f2a9c0e1b7d3a440000000000000a1f",  # a request id: a prefix and a counter
        "550e8400-e29b-41d4-a716-446655440000",  # a UUID's groups
        "12345678-e29b-41d4",
        "2025-07-05 10:15:22",
        "05-07-25 10:15:22",
        "192.168.100.200",
        '"GET /healthz HTTP/1.1" 200 1354 "-"',  # an access line's status and size
        "entry 12 attempt 3, next try in 20s",
        "123456",  # six digits: no number
    ],
)
def test_what_is_not_a_phone_number_is_left_as_it_is(text):
    assert mask(text) == text


def test_a_number_is_masked_as_the_logs_write_it():
    assert masked_number("+27721234567") == "+27*******4567"
    assert masked_number("+12015550123") == "+1*******0123"


def test_every_handler_gets_records_already_masked_and_our_lines_mask_their_fields(make_app):
    make_app()  # installs the record factory, as every process's factory does
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)  # a library's handler: its own format, no JSON
    logger = logging.getLogger("tests.masking")
    logger.addHandler(plain)
    try:
        logger.warning("caller %s rang %s", "072 123 4567", 6000)
        try:
            raise ValueError("no contact for +27721234567")
        except ValueError:
            logger.exception("lookup failed", extra=fields(phone="0721234567", agent="6000"))
    finally:
        logger.removeHandler(plain)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        logger.error("failed", exc_info=ValueError("+27721234567"), extra=fields(to="0721234567"))
    finally:
        logger.removeHandler(keep)
    line = json.loads(JsonFormatter().format(records[0]))

    assert stream.getvalue().startswith("caller *** *** 4567 rang 6000\n")
    assert "no contact for +27*******4567" in stream.getvalue()
    assert "0721234567" not in stream.getvalue()
    assert line["to"] == "******4567"
    assert "+27*******4567" in line["exception"]
