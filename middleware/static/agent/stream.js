// The agent's stream (screen pops, callbacks and status changes) with EventSource, which follows the main port's
// 307 to the stream server by itself. Reconnecting is the page's own, with jitter, so that a
// thousand pages that lost a restarted stream server do not all come back in the same second:
// - a stream that ended or broke: after the server's `retry:` hint (2 s; EventSource keeps the
//   value to itself, so it is written here) times 1 to 2, doubling while it keeps failing;
// - a stream refused: EventSource gives up on any answer but 200 without saying why, so the page
//   asks the same URL once with fetch: 503 `busy` waits its Retry-After times 1 to 2, 401/403 tell
//   the agent why (a token of another agent, an expired one), a 200 reconnects at once.
import { $, agentPath, headers, state } from "./api.js";

const RETRY_MS = 2000;  // services/events.py RETRY_MS: the `retry:` every stream opens with
const MOST_MS = 60000;
const stream = { source: null, timer: null, lastEventId: null, failures: 0, handlers: null, lostAt: null };

// Never sooner than asked; spread over as much again.
export function jittered(ms) {
  return ms * (1 + Math.random());
}

function streamBase() {
  return (document.body.dataset.streamUrl || "").replace(/\/$/, "");
}

function streamUrl() {
  const query = new URLSearchParams({ api_key: state.key });
  if (stream.lastEventId) query.set("last_event_id", stream.lastEventId);
  return `${streamBase()}${agentPath()}/events?${query}`;
}

function showState(online, text) {
  $("#status").className = online ? "dot online" : "dot offline";
  $("#stream-state").textContent = text;
}

function again(ms) {
  clearTimeout(stream.timer);
  stream.timer = setTimeout(open, ms);
}

function listen(source, name, handle) {
  source.addEventListener(name, (message) => {
    if (message.lastEventId) stream.lastEventId = message.lastEventId;
    handle(JSON.parse(message.data));
  });
}

function open() {
  close();
  const source = new EventSource(streamUrl());
  stream.source = source;
  source.addEventListener("open", () => {
    stream.failures = 0;
    showState(true, "Live");
    const away = stream.lostAt === null ? 0 : Date.now() - stream.lostAt;
    stream.lostAt = null;
    stream.handlers.onOpen(away);
  });
  source.addEventListener("error", () => {
    if (stream.source !== source) return;
    const refused = source.readyState === EventSource.CLOSED;
    source.close();
    if (stream.lostAt === null) stream.lostAt = Date.now();
    showState(false, "Reconnecting…");
    if (refused) return explain(source);
    const backoff = Math.min(RETRY_MS * 2 ** stream.failures, MOST_MS);
    stream.failures += 1;
    again(jittered(backoff));
  });
  listen(source, "screen-pop", stream.handlers.onPop);
  listen(source, "callback", stream.handlers.onCallback);
  listen(source, "status", stream.handlers.onStatus);
}

async function explain(source) {
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(`${streamBase()}${agentPath()}/events`, { headers: headers(), signal: controller.signal, cache: "no-store" });
  } catch (error) {
    const backoff = Math.min(RETRY_MS * 2 ** stream.failures, MOST_MS);  // the stream server is away
    stream.failures += 1;
    return again(jittered(backoff));
  }
  if (stream.source !== source) return controller.abort();
  if (response.ok) {
    controller.abort();
    return again(jittered(250));
  }
  if (response.status === 503) {
    const seconds = Number(response.headers.get("Retry-After")) || 5;
    showState(false, `Busy: reconnecting in about ${seconds} s…`);
    return again(jittered(seconds * 1000));
  }
  const problem = await response.json().catch(() => ({}));
  stream.handlers.onRefused(response.status, problem.detail || response.statusText);
}

export function close() {
  clearTimeout(stream.timer);
  if (stream.source) stream.source.close();
  stream.source = null;
}

// Opens the stream; `handlers` has onOpen(awayMs: how long the stream was lost, 0 the first time),
// onPop(pop), onCallback(callback), onStatus(board entry), onRefused(status, why).
export function connect(handlers) {
  stream.handlers = handlers;
  stream.failures = 0;
  stream.lastEventId = null;
  stream.lostAt = null;
  open();
}
