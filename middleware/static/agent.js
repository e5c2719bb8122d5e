// The agent page: sign in, live screen pops over Server-Sent Events, click-to-call, recent calls.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { extension: null, key: null, source: null, lastEventId: null, reconnect: null };

function headers() {
  return { "X-API-Key": state.key, "Content-Type": "application/json", Accept: "application/json" };
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function popUrl(pop) {
  if (pop.screen_pop_url) return pop.screen_pop_url;
  const query = new URLSearchParams({ phone: pop.phone || "", api_key: state.key });
  return `/pop?${query}`;
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

const RECONNECT_MS = 5000;  // after a refused stream (503 busy, 401): EventSource gives up on those

function streamState(online, text) {
  $("#status").className = online ? "dot online" : "dot offline";
  $("#stream-state").textContent = text;
}

// Streams go to the stream server (CTI_STREAM_URL, another origin under `make run`) or this origin.
function connect() {
  if (state.source) state.source.close();
  clearTimeout(state.reconnect);
  const base = (document.body.dataset.streamUrl || "").replace(/\/$/, "");
  const query = new URLSearchParams({ api_key: state.key });
  if (state.lastEventId) query.set("last_event_id", state.lastEventId);
  const source = new EventSource(`${base}/api/v1/agents/${encodeURIComponent(state.extension)}/events?${query}`);
  source.addEventListener("open", () => streamState(true, "Live"));
  source.addEventListener("error", () => {
    streamState(false, "Reconnecting…");
    if (source.readyState === EventSource.CLOSED) {  // refused: try again ourselves, from the last pop
      state.reconnect = setTimeout(connect, RECONNECT_MS + Math.random() * 1000);
    }
  });
  source.addEventListener("screen-pop", (message) => {
    state.lastEventId = message.lastEventId;
    showPop(JSON.parse(message.data));
    setTimeout(loadCalls, 1500);
  });
  state.source = source;
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
  } catch (error) {
    result.textContent = error.message;
    result.className = "error";
  }
}

async function loadCalls() {
  const body = $("#calls tbody");
  try {
    const page = await api("GET", "/api/v1/journal?limit=10");
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

async function signIn(extension, key) {
  state.extension = extension;
  state.key = key;
  try {
    await api("GET", "/api/v1/journal?limit=1");
  } catch (error) {
    if (error.status === 401) {
      $("#sign-in-error").textContent = "That API key was not accepted.";
      $("#sign-in-error").hidden = false;
      return;
    }
  }
  localStorage.setItem("cti.extension", extension);
  sessionStorage.setItem("cti.key", key);
  $("#sign-in").hidden = true;
  $("#desk").hidden = false;
  $("#who").hidden = false;
  $("#ext-label").textContent = extension;
  connect();
  loadCalls();
}

function signOut() {
  if (state.source) state.source.close();
  sessionStorage.removeItem("cti.key");
  location.reload();
}

$("#sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("#extension").value.trim(), $("#api-key").value.trim());
});
$("#dial-form").addEventListener("submit", dial);
$("#refresh-calls").addEventListener("click", loadCalls);
$("#sign-out").addEventListener("click", signOut);

$("#extension").value = localStorage.getItem("cti.extension") || "";
if ($("#extension").value && sessionStorage.getItem("cti.key")) {
  signIn($("#extension").value, sessionStorage.getItem("cti.key"));
}
