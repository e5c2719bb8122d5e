"""In-process promises of the operations endpoints: request ids, JSON log lines, metrics counts."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from middleware.runtime.logs import JsonFormatter

from .conftest import API_KEY, CC_AGENT_KEY, CC_AGENT_URL

ROOT = Path(__file__).resolve().parent.parent


def _sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_request_id_is_taken_from_x_request_id_or_made_and_echoed(client, auth):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    odd = client.get("/healthz", headers={"X-Request-ID": "not a plain token; <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["X-Request-ID"])
    refused = client.get("/api/v1/journal", headers={"X-Request-ID": "r-1"})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"] == "r-1"


def test_one_json_log_line_per_request_with_id_method_route_status_duration(client, caplog):
    client.get("/api/v1/openapi.json", headers={"X-Request-ID": "req-7"})
    records = [r for r in caplog.records if r.name == "middleware.request"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == "req-7"
    assert line["method"] == "GET" and line["route"] == "/api/v1/openapi.json"
    assert line["status"] == 200 and isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO" and line["logger"] == "middleware.request"


def test_a_noted_field_joins_the_request_line_and_never_clashes_with_its_own(app, caplog):
    from middleware.runtime import logs

    with app.test_request_context("/healthz"):
        logs.start()
        assert logs.note(journal_entry=3, status="noted")
        response = logs.finish(app.response_class("ok"))
    assert response.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "middleware.request"]
    line = json.loads(JsonFormatter().format(record))
    assert line["journal_entry"] == 3 and line["status"] == 200


def test_json_formatter_masks_secrets_in_messages_fields_and_tracebacks(make_app):
    make_app(
        CTI_DIALER="cc_agent", CTI_CC_AGENT_URL=CC_AGENT_URL, CTI_CC_AGENT_API_KEY=CC_AGENT_KEY
    )
    logger = logging.getLogger("middleware.test")
    try:
        raise RuntimeError(f"boom {CC_AGENT_KEY}")
    except RuntimeError:
        record = logger.makeRecord(
            "middleware.test", logging.ERROR, __file__, 1, "key %s", (API_KEY,), None
        )
        record.exc_info = __import__("sys").exc_info()
    record.cti = {"url": f"{CC_AGENT_URL}/x?api_key={CC_AGENT_KEY}"}
    text = JsonFormatter().format(record)
    assert API_KEY not in text and CC_AGENT_KEY not in text
    line = json.loads(text)
    assert line["message"] == "key ***" and "***" in line["url"] and "***" in line["exception"]


def test_metrics_count_calls_requests_and_upstream_latency_in_one_process(make_app, upstream, auth):
    app = make_app(
        CTI_DIALER="cc_agent", CTI_CC_AGENT_URL=CC_AGENT_URL, CTI_CC_AGENT_API_KEY=CC_AGENT_KEY
    )
    client = app.test_client()
    upstream.get(f"{CC_AGENT_URL}/api/cc_agent/originate", json={"success": True, "uuid": "u-1"})
    before = client.get("/metrics").text
    answer = client.post("/api/v1/calls", json={"to": "0721234567", "agent": "6000"}, headers=auth)
    assert answer.status_code == 201
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    calls = 'cti_calls_total{outcome="initiated",provider="cc_agent"}'
    assert _sample(after.text, calls) == _sample(before, calls) + 1
    latency = 'cti_upstream_request_seconds_count{outcome="200",upstream="cc_agent"}'
    assert _sample(after.text, latency) == _sample(before, latency) + 1
    assert 'cti_journal_entries{status="pending"} 0.0' in after.text
    for result in ("hit", "miss", "stale", "error"):
        assert f'cti_lookups_total{{result="{result}"}}' in after.text


def test_request_metrics_count_an_unknown_method_as_other_so_clients_cannot_add_series(client):
    before = client.get("/metrics").text
    for method in ("PROPFIND", "BREW", "X-ANYTHING"):
        assert client.open("/healthz", method=method).status_code == 405
    text = client.get("/metrics").text
    other = 'cti_http_request_seconds_count{method="other",route="(unmatched)",status="405"}'
    assert _sample(text, other) == _sample(before, other) + 3
    assert "PROPFIND" not in text and "BREW" not in text and "X-ANYTHING" not in text


@pytest.mark.slow  # runs a Python subprocess
def test_importing_metrics_or_logs_changes_no_environment_and_reads_no_proc(tmp_path):
    """The gunicorn master imports ``logs`` (its JSON formatter), and so ``metrics``: neither may
    choose a metrics directory there, nor load prometheus_client before one is chosen."""
    script = """
import json, os, sys
opened = []
sys.addaudithook(lambda event, args: event == "open" and opened.append(str(args[0])))
before = dict(os.environ)
import middleware.runtime.logs, middleware.runtime.metrics
from_proc = [path for path in opened if path.startswith("/proc")]
print(json.dumps([dict(os.environ) == before, from_proc, "prometheus_client" in sys.modules]))
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
print(json.dumps(middleware.runtime.metrics.CONTENT_TYPE == CONTENT_TYPE_PLAIN_0_0_4))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    imported, same_type = [json.loads(line) for line in done.stdout.splitlines()]
    assert imported == [True, [], False]
    assert same_type is True
    assert list(tmp_path.iterdir()) == []  # no metrics directory made


@pytest.mark.slow  # runs a Python subprocess
def test_the_factory_sets_the_metrics_up_in_multiprocess_mode(tmp_path):
    """``create_app`` chooses the directory before prometheus_client loads, so a worker's counts
    land in files that a scrape of any worker sums."""
    script = """
import json, os
from middleware import create_app
app = create_app({"CTI_DATABASE": "cti.sqlite3"})
directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
text = app.test_client().get("/metrics").text
print(json.dumps([directory, sorted(os.listdir(directory)), 'cti_lookups_total{result="hit"}' in text]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS", "CTI_"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    directory, files, listed = json.loads(done.stdout.splitlines()[-1])
    assert Path(directory).parent == tmp_path / f"cti-metrics-{os.getuid()}"
    assert any(name.startswith("counter_") for name in files) and listed


def test_a_request_line_written_straight_to_a_json_stream_is_the_formatter_s_line(app):
    """Where the line's only handler is a plain JSON stream handler, ``logs.info`` writes it
    without a record: the same object the formatter makes of the record, numbers masked and
    credentials scrubbed in the message and every field; any other handler gets the record."""
    import io

    from middleware.runtime import logs

    logger = logging.getLogger("middleware.test-direct")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        values = {"request_id": "0721234567", "route": f"/x?api_key={API_KEY}", "status": 200}
        logs.info(logger, "%s %s", ("GET", "+27721234567"), **values)
        record = logger.makeRecord(
            logger.name,
            logging.INFO,
            __file__,
            0,
            "%s %s",
            ("GET", "+27721234567"),
            None,
            extra=logs.fields(**values),
        )
        written = json.loads(stream.getvalue())
        formatted = json.loads(JsonFormatter().format(record))
        assert stream.getvalue().count("\n") == 1
        assert {**written, "ts": None} == {**formatted, "ts": None}
        assert written["message"] == "GET +27*******4567" and written["request_id"] == "******4567"
        assert API_KEY not in stream.getvalue() and "***" in written["route"]

        class Counting(logging.Handler):
            records: list = []

            def emit(self, record):
                self.records.append(record)

        counting = Counting()
        logger.addHandler(counting)
        logs.info(logger, "%s %s", ("GET", "+27721234567"), **values)
        assert len(counting.records) == 1 and stream.getvalue().count("\n") == 2
        logger.removeHandler(counting)

        stream.close()  # a broken stream: reported as ``emit`` reports it, the caller goes on
        logs.info(logger, "%s %s", ("GET", "+27721234567"), **values)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
