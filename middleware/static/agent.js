// The agent page: sign in with an agent token, live screen pops over Server-Sent Events, the agent's
// status, calls in progress (hold, retrieve, hang up, recording, disposition), click-to-call and the
// agent's own recent calls. What the call center's provider does not offer (501) is hidden.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { extension: null, key: null, source: null, lastEventId: null, reconnect: null, signedIn: false, unsupported: new Set(), resultCodes: null };

function headers() {
  return { "X-API-Key": state.key, "Content-Type": "application/json", Accept: "application/json" };
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

const agentPath = () => `/api/v1/agents/${encodeURIComponent(state.extension)}`;

function popUrl(pop) {
  if (pop.screen_pop_url) return pop.screen_pop_url;
  const query = new URLSearchParams({ phone: pop.phone || "", api_key: state.key });
  return `/pop?${query}`;
}

// What the number itself tells (the lookup's number_info): "Mobile, South Africa, Vodacom".
function numberLine(info) {
  if (!info) return "";
  const type = info.type === "unknown" ? "" : info.type.replaceAll("_", " ");
  const kind = type && type[0].toUpperCase() + type.slice(1);
  return [kind, info.description, info.carrier].filter(Boolean).join(", ");
}

function showPop(pop) {
  const item = $("#pop-template").content.firstElementChild.cloneNode(true);
  const contact = pop.contact;
  item.dataset.callId = pop.call_id || "";
  item.querySelector(".pop-time").textContent = new Date().toLocaleTimeString();
  item.querySelector(".pop-phone").textContent = pop.phone || "unknown number";
  if (pop.found && contact) {
    item.querySelector(".pop-name").textContent = contact.name || contact.company || pop.phone;
    item.querySelector(".pop-company").textContent = contact.company || "";
    item.querySelector(".pop-type").textContent = contact.entity_type || "";
    item.querySelector(".open-crm").href = popUrl(pop);
  } else {
    item.classList.add("unknown");
    item.querySelector(".pop-name").textContent = pop.cid_name || "Unknown caller";
    item.querySelector(".pop-company").textContent = numberLine(pop.number_info);
    item.querySelector(".pop-type").textContent = pop.error ? `CRM lookup failed (${pop.error})` : "";
    item.querySelector(".open-crm").href = popUrl(pop);
    const form = item.querySelector(".create-contact");
    form.hidden = !pop.phone;
    form.addEventListener("submit", (event) => createContact(event, form, pop));
  }
  $("#no-pops").hidden = true;
  $("#pops").prepend(item);
}

async function createContact(event, form, pop) {
  event.preventDefault();
  const fields = new FormData(form);
  const body = { first_name: fields.get("first_name"), last_name: fields.get("last_name"), phone: pop.phone };
  if (fields.get("email")) body.email = fields.get("email");
  const result = form.querySelector(".create-result");
  try {
    const created = await api("POST", "/api/v1/contacts", body);
    result.textContent = `Created ${created.contact.name || body.first_name}.`;
    result.className = "create-result ok";
  } catch (error) {
    result.textContent = error.message;
    result.className = "create-result error";
  }
}

const RECONNECT_MS = 5000;  // after a refused stream (503 busy): EventSource gives up on those

function streamState(online, text) {
  $("#status").className = online ? "dot online" : "dot offline";
  $("#stream-state").textContent = text;
}

// Streams go to the stream server (CTI_STREAM_URL, another origin under `make run`) or this origin.
function streamBase() {
  return (document.body.dataset.streamUrl || "").replace(/\/$/, "");
}

// The screen-pop stream, which also tells whether the sign-in holds: EventSource gives up on an
// answer other than 200 without saying why, so the page asks the same URL once more to show the
// reason (a token of another agent, an expired one) instead of failing silently.
function streamUrl() {
  const query = new URLSearchParams({ api_key: state.key });
  if (state.lastEventId) query.set("last_event_id", state.lastEventId);
  return `${streamBase()}${agentPath()}/events?${query}`;
}

function connect() {
  if (state.source) state.source.close();
  clearTimeout(state.reconnect);
  const source = new EventSource(streamUrl());
  source.addEventListener("open", () => {
    streamState(true, "Live");
    $("#stream-error").hidden = true;
    if (!state.signedIn) showDesk();
  });
  source.addEventListener("error", () => {
    streamState(false, "Reconnecting…");
    if (source.readyState === EventSource.CLOSED) explainStream(source);
  });
  source.addEventListener("screen-pop", (message) => {
    state.lastEventId = message.lastEventId;
    showPop(JSON.parse(message.data));
    setTimeout(loadCalls, 1500);
    loadActive();
  });
  state.source = source;
}

async function explainStream(source) {
  const again = (seconds) => {
    state.reconnect = setTimeout(() => { if (state.source === source) connect(); }, seconds * 1000);
  };
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(`${streamBase()}${agentPath()}/events`, { headers: headers(), signal: controller.signal, cache: "no-store" });
  } catch (error) {
    return again(RECONNECT_MS / 1000 + Math.random());  // the stream server is away: keep trying
  }
  if (response.ok) {
    controller.abort();
    return again(0);
  }
  if (response.status === 503) return again(Number(response.headers.get("Retry-After")) || 5);
  const problem = await response.json().catch(() => ({}));
  refused(response.status, problem.detail || response.statusText);
}

function refused(status, why) {
  const text = status === 401
    ? `That token was not accepted: ${why} Ask your CRM for a new one.`
    : `Extension ${state.extension} refused: ${why}`;
  if (!state.signedIn) {
    $("#sign-in-error").textContent = text;
    $("#sign-in-error").hidden = false;
    sessionStorage.removeItem("cti.key");
    return;
  }
  $("#stream-error").textContent = `Screen pops stopped. ${text}`;
  $("#stream-error").hidden = false;
}

async function dial(event) {
  event.preventDefault();
  const result = $("#dial-result");
  result.className = "";
  result.textContent = "Calling…";
  try {
    const call = await api("POST", "/api/v1/calls", { to: $("#dial-number").value, agent: state.extension });
    result.textContent = `Calling ${call.to} (call ${call.call_id} via ${call.provider})`;
    result.className = "ok";
    setTimeout(loadActive, 1500);
  } catch (error) {
    result.textContent = error.message;
    result.className = "error";
  }
}

// The agent's own calls only: the journal filtered by the agent (a token may list no other).
async function loadCalls() {
  const body = $("#calls tbody");
  try {
    const query = new URLSearchParams({ agent: state.extension, limit: "10" });
    const page = await api("GET", `/api/v1/journal?${query}`);
    body.replaceChildren(...page.entries.map((entry) => {
      const log = entry.call_log || {};
      const row = document.createElement("tr");
      for (const value of [log.DateTime, log.CallType, log.Number, log.Name, entry.status]) {
        const cell = document.createElement("td");
        cell.textContent = value || "";
        row.append(cell);
      }
      return row;
    }));
  } catch (error) {
    body.replaceChildren();
  }
}

// Status and call control ------------------------------------------------------------------------

function hideUnsupported() {
  for (const operation of state.unsupported) {
    for (const control of document.querySelectorAll(`[data-status="${operation}"], [data-action="${operation}"]`)) {
      control.hidden = true;
    }
  }
}

function unsupported(operation, result) {
  state.unsupported.add(operation);
  hideUnsupported();
  result.textContent = "Your call center does not offer that.";
  result.className = "muted";
}

async function setStatus(status) {
  const result = $("#agent-state-result");
  try {
    await api("PUT", `${agentPath()}/status`, { status });
    for (const button of document.querySelectorAll("#agent-state [data-status]")) {
      button.classList.toggle("current", button.dataset.status === status);
    }
    result.textContent = `You are ${status}.`;
    result.className = "ok";
  } catch (error) {
    if (error.status === 501) return unsupported(status, result);
    result.textContent = error.message;
    result.className = "error";
  }
}

async function loadResultCodes() {
  if (state.resultCodes) return state.resultCodes;
  try {
    const query = new URLSearchParams({ agent: state.extension });
    state.resultCodes = (await api("GET", `/api/v1/result-codes?${query}`)).result_codes;
  } catch (error) {
    state.resultCodes = [];
  }
  return state.resultCodes;
}

async function loadActive() {
  if (!state.extension || $("#active-calls").hidden) return;
  let calls;
  try {
    calls = (await api("GET", `${agentPath()}/calls`)).calls;
  } catch (error) {
    if (error.status === 501) $("#active-calls").hidden = true;  // the provider lists no calls
    else $("#active-result").textContent = error.message;
    return;
  }
  const codes = calls.length ? await loadResultCodes() : [];
  $("#no-active").hidden = calls.length > 0;
  $("#active-list").replaceChildren(...calls.map((call) => activeCall(call, codes)));
  hideUnsupported();
}

function activeCall(call, codes) {
  const item = $("#active-template").content.firstElementChild.cloneNode(true);
  item.dataset.callId = call.call_id;
  item.querySelector(".active-number").textContent = call.phone_number || "";
  item.querySelector(".active-name").textContent = call.customer_name || "";
  item.querySelector(".active-since").textContent = call.start_time || "";
  const select = item.querySelector("select");
  for (const code of codes) {
    const option = document.createElement("option");
    option.value = code.code;
    option.textContent = code.description || code.code;
    select.append(option);
  }
  for (const button of item.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => callAction(call.call_id, button.dataset.action));
  }
  item.querySelector("form.dispose").addEventListener("submit", (event) => {
    event.preventDefault();
    callAction(call.call_id, "dispose", { result_code: select.value });
  });
  return item;
}

async function callAction(callId, action, extra) {
  const result = $("#active-result");
  const path = `/api/v1/calls/${encodeURIComponent(callId)}`;
  const agent = { agent: state.extension };
  try {
    if (action === "recording-on" || action === "recording-off") {
      await api("PUT", `${path}/recording`, { ...agent, recording: action === "recording-on" });
    } else {
      await api("POST", `${path}/${action}`, { ...agent, ...extra });
    }
    result.textContent = `${action.replace("-", " ")}: done.`;
    result.className = "ok";
    if (action === "hangup" || action === "dispose") setTimeout(loadActive, 500);
  } catch (error) {
    if (error.status === 501) return unsupported(action, result);
    result.textContent = error.message;
    result.className = "error";
  }
}

// Signing in -------------------------------------------------------------------------------------

function signIn(extension, key) {
  state.extension = extension;
  state.key = key;
  state.signedIn = false;
  $("#sign-in-error").hidden = true;
  connect();
}

function showDesk() {
  state.signedIn = true;
  localStorage.setItem("cti.extension", state.extension);
  sessionStorage.setItem("cti.key", state.key);
  $("#sign-in").hidden = true;
  $("#desk").hidden = false;
  $("#who").hidden = false;
  $("#ext-label").textContent = state.extension;
  loadCalls();
  loadActive();
}

function signOut() {
  if (state.source) state.source.close();
  sessionStorage.removeItem("cti.key");
  location.reload();
}

// A CRM (or `make run`) may link to /agent#agent=6000&token=...: the fragment never reaches a
// server log, and it is wiped from the address bar at once.
function signInFromLink() {
  const given = new URLSearchParams(location.hash.slice(1));
  if (!given.get("token")) return false;
  history.replaceState(null, "", location.pathname + location.search);
  const extension = given.get("agent") || "";
  $("#extension").value = extension;
  signIn(extension, given.get("token"));
  return true;
}

$("#sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("#extension").value.trim(), $("#api-key").value.trim());
});
$("#dial-form").addEventListener("submit", dial);
$("#refresh-calls").addEventListener("click", loadCalls);
$("#refresh-active").addEventListener("click", loadActive);
$("#sign-out").addEventListener("click", signOut);
for (const button of document.querySelectorAll("#agent-state [data-status]")) {
  button.addEventListener("click", () => setStatus(button.dataset.status));
}

$("#extension").value = localStorage.getItem("cti.extension") || "";
if (!signInFromLink() && $("#extension").value && sessionStorage.getItem("cti.key")) {
  signIn($("#extension").value, sessionStorage.getItem("cti.key"));
}
