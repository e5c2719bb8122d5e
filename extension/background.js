// Listens to the agent's screen-pop stream and opens the caller's record in a tab (with a
// notification saying who calls: the contact, or for an unknown caller what the number tells,
// "Mobile, South Africa, Vodacom"); keeps the count of the agent's callbacks (the open ones and its
// own) on the toolbar badge; dials tel: links clicked (and confirmed) on the CRM sites the agent
// configured, and nowhere else.
// MV3 service workers have no EventSource, so the stream is read with fetch and parsed here. fetch
// follows the main port's 307 to the stream server (another port of the same host, which the
// extension may reach) and keeps the X-API-Key header across it. Reconnecting waits the server's
// `retry:` hint, or a busy answer's Retry-After, times 1 to 2 (jitter: a thousand agents whose
// stream server restarted do not all come back in the same second), doubling while it fails.
"use strict";

const RETRY_MS = 2000;  // until the stream says its own `retry:`
const MOST_MS = 60000;
const RELOAD_AFTER_MS = 60000;
let controller = null;
let lastEventId = null;
let connectedWith = null;
const callbacks = new Map();  // id -> callback: the open ones and the agent's own

async function options() {
  const saved = await chrome.storage.local.get(["url", "key", "extension"]);
  return saved.url && saved.key && saved.extension ? saved : null;
}

function popUrl(opts, pop) {
  if (pop.screen_pop_url) return pop.screen_pop_url;
  const query = new URLSearchParams({ phone: pop.phone || "", api_key: opts.key });
  return `${opts.url}/pop?${query}`;
}

// What the number itself tells (the lookup's number_info), as the agent page writes it.
function numberLine(info) {
  if (!info) return "";
  const type = !info.type || info.type === "unknown" ? "" : info.type.replaceAll("_", " ");
  const kind = type && type[0].toUpperCase() + type.slice(1);
  return [kind, info.description, info.carrier].filter(Boolean).join(", ");
}

function popText(pop) {
  const contact = pop.found && pop.contact;
  if (contact) {
    return { title: `Call from ${contact.name || contact.company || pop.phone}`, message: [contact.company, pop.phone].filter(Boolean).join(" · ") };
  }
  return { title: `Call from ${pop.phone || "an unknown number"}`, message: numberLine(pop.number_info) || "Not in the CRM" };
}

function showPop(opts, pop) {
  chrome.tabs.create({ url: popUrl(opts, pop), active: true });
  const { title, message } = popText(pop);
  chrome.action.setTitle({ title: `CTI screen pop: ${title}${message ? ` (${message})` : ""}` });
  chrome.notifications.create(`pop-${pop.call_id || Date.now()}`, {
    type: "basic", iconUrl: "icon.png", title, message, priority: 2,
  });
}

// Callbacks on the badge ---------------------------------------------------------------------------

function counted(opts, callback) {
  return callback.status === "open" || (callback.status === "assigned" && callback.agent === opts.extension);
}

function showCount() {
  chrome.action.setBadgeText({ text: callbacks.size ? String(callbacks.size) : "" });
}

async function loadCallbacks(opts) {
  const own = new URLSearchParams({ status: "assigned", agent: opts.extension, limit: "1000" });
  const lists = await Promise.all([`status=open&limit=1000`, own.toString()].map(async (query) => {
    const response = await fetch(`${opts.url}/api/v1/callbacks?${query}`, { headers: { "X-API-Key": opts.key }, cache: "no-store" });
    if (!response.ok) throw new Error(`callbacks answered ${response.status}`);
    return (await response.json()).callbacks;
  }));
  callbacks.clear();
  for (const callback of lists.flat()) callbacks.set(callback.id, callback);
  showCount();
}

function callbackChanged(opts, callback) {
  if (counted(opts, callback)) callbacks.set(callback.id, callback);
  else callbacks.delete(callback.id);
  showCount();
}

// The stream -------------------------------------------------------------------------------------

function handle(opts, message, link) {
  if (message.id) lastEventId = message.id;
  if (message.retry && /^\d+$/.test(message.retry)) link.retryMs = Number(message.retry);
  if (!message.data) return;
  if (message.event === "screen-pop") showPop(opts, JSON.parse(message.data));
  else if (message.event === "callback") callbackChanged(opts, JSON.parse(message.data));
}

// Never sooner than asked; spread over as much again.
function jittered(ms) {
  return ms * (1 + Math.random());
}

async function read(opts, response, link) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") message.data += (message.data ? "\n" : "") + text;
        else message[field] = text;
      }
      handle(opts, message, link);
    }
  }
}

async function listen(opts) {
  const signature = JSON.stringify(opts);
  if (controller && connectedWith === signature) return;
  if (controller) controller.abort();
  controller = new AbortController();
  connectedWith = signature;
  callbacks.clear();
  showCount();
  const ours = controller;
  const link = { retryMs: RETRY_MS, failures: 0, lostAt: null, counted: false };
  while (!ours.signal.aborted) {
    let wait;
    try {
      const headers = { "X-API-Key": opts.key, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(`${opts.url}/api/v1/agents/${encodeURIComponent(opts.extension)}/events`,
        { headers, signal: ours.signal, cache: "no-store" });
      if (response.status === 503) {
        wait = jittered((Number(response.headers.get("Retry-After")) || 5) * 1000);
        link.failures += 1;
        console.warn("CTI stream: busy, again in", Math.round(wait), "ms");
      } else if (!response.ok) {
        throw new Error(`stream answered ${response.status}`);
      } else {
        link.failures = 0;
        // A resumed stream replays what it missed (Last-Event-ID): the list is read afresh only
        // the first time and after a long gap, not each time a stream ends and comes back.
        if (!link.counted || Date.now() - link.lostAt > RELOAD_AFTER_MS) {
          link.counted = true;
          loadCallbacks(opts).catch((error) => { link.counted = false; console.warn("CTI callbacks:", error.message); });
        }
        link.lostAt = null;
        await read(opts, response, link);
      }
    } catch (error) {
      if (ours.signal.aborted) return;
      link.failures += 1;
      console.warn("CTI stream:", error.message);
    }
    if (link.lostAt === null) link.lostAt = Date.now();
    if (wait === undefined) wait = jittered(Math.min(link.retryMs * 2 ** Math.max(link.failures - 1, 0), MOST_MS));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

// The tel: link handler runs only on the CRM origins the agent configured and granted; it is in the
// page once the DOM is (document_end, before the load event), so no early click slips past it.
const SCRIPT_ID = "tel-links";
const RUN_AT = "document_end";
let registering = Promise.resolve();

async function registerTelLinks() {
  const { origins = [] } = await chrome.storage.local.get("origins");
  const matches = [];
  for (const origin of origins) {
    if (await chrome.permissions.contains({ origins: [`${origin}/*`] })) matches.push(`${origin}/*`);
  }
  const [current] = await chrome.scripting.getRegisteredContentScripts({ ids: [SCRIPT_ID] });
  const same = current && current.runAt === RUN_AT && JSON.stringify(current.matches) === JSON.stringify(matches);
  if (same) return;
  if (current) await chrome.scripting.unregisterContentScripts({ ids: [SCRIPT_ID] });
  if (matches.length) {
    await chrome.scripting.registerContentScripts([
      { id: SCRIPT_ID, matches, js: ["content.js"], runAt: RUN_AT },
    ]);
  }
}

async function start() {
  registering = registering.then(registerTelLinks).catch((error) => console.warn("CTI:", error.message));
  const opts = await options();
  if (opts) listen(opts);
}

async function dial(to) {
  const opts = await options();
  if (!opts) return { ok: false, message: "Open the CTI screen pop options first." };
  const response = await fetch(`${opts.url}/api/v1/calls`, {
    method: "POST",
    headers: { "X-API-Key": opts.key, "Content-Type": "application/json" },
    body: JSON.stringify({ to, agent: opts.extension }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) return { ok: false, message: body.detail || `Call failed (${response.status})` };
  return { ok: true, message: `Calling ${body.to}…` };
}

// Only our own content script, on a page of a configured CRM origin, may ask for a call.
async function fromCrm(sender) {
  if (sender.id !== chrome.runtime.id || !sender.tab || !sender.origin) return false;
  const { origins = [] } = await chrome.storage.local.get("origins");
  return origins.includes(sender.origin);
}

chrome.runtime.onMessage.addListener((message, sender, reply) => {
  if (message && message.type === "dial" && typeof message.to === "string") {
    fromCrm(sender)
      .then((allowed) => (allowed ? dial(message.to) : { ok: false, message: "Not a configured CRM site." }))
      .then(reply, (error) => reply({ ok: false, message: error.message }));
    return true;
  }
  return false;
});

chrome.storage.onChanged.addListener(start);
chrome.permissions.onAdded.addListener(start);
chrome.permissions.onRemoved.addListener(start);  // access withdrawn in Chrome's own settings
chrome.runtime.onStartup.addListener(start);
chrome.runtime.onInstalled.addListener(start);
chrome.alarms.create("keep-listening", { periodInMinutes: 0.5 });
chrome.alarms.onAlarm.addListener(start);
start();
