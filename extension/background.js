// Listens to the agent's screen-pop stream and opens the caller's record in a tab; dials tel: links
// clicked (and confirmed) on the CRM sites the agent configured, and nowhere else.
// MV3 service workers have no EventSource, so the stream is read with fetch and parsed here.
"use strict";

let controller = null;
let lastEventId = null;
let connectedWith = null;

async function options() {
  const saved = await chrome.storage.local.get(["url", "key", "extension"]);
  return saved.url && saved.key && saved.extension ? saved : null;
}

function popUrl(opts, pop) {
  if (pop.screen_pop_url) return pop.screen_pop_url;
  const query = new URLSearchParams({ phone: pop.phone || "", api_key: opts.key });
  return `${opts.url}/pop?${query}`;
}

function handle(opts, message) {
  if (message.id) lastEventId = message.id;
  if (message.event !== "screen-pop" || !message.data) return;
  const pop = JSON.parse(message.data);
  chrome.tabs.create({ url: popUrl(opts, pop), active: true });
}

async function listen(opts) {
  const signature = JSON.stringify(opts);
  if (controller && connectedWith === signature) return;
  if (controller) controller.abort();
  controller = new AbortController();
  connectedWith = signature;
  const ours = controller;
  while (!ours.signal.aborted) {
    try {
      const headers = { "X-API-Key": opts.key, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(`${opts.url}/api/v1/agents/${encodeURIComponent(opts.extension)}/events`,
        { headers, signal: ours.signal, cache: "no-store" });
      if (!response.ok) throw new Error(`stream answered ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
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
          handle(opts, message);
        }
      }
    } catch (error) {
      if (ours.signal.aborted) return;
      console.warn("CTI stream:", error.message);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
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
