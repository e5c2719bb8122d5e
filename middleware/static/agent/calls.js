// The agent's status, calls in progress (hold, retrieve, hang up, recording, disposition) and the
// agent's own recent calls. What the provider does not offer (501) is hidden.
//
// The status shown is the one this page last set and the provider accepted (kept per extension
// in localStorage with its time, so a reload still shows it): the API has no "get my status" an
// agent token may read (the board is for supervisors), and no status push reaches the agent's
// stream.
import { $, agentPath, api, hideUnsupported, say, state, unsupported } from "./api.js";
import { logTime, showTime } from "./time.js";

const LABELS = { available: "Available", paused: "Paused", offline: "Offline" };
const ACTIVE_POLL_MS = 30000;  // while a call is listed, so an ended one leaves the list
let resultCodes = null;
let activeTimer = null;

const statusKey = () => `cti.status.${state.extension}`;

function showStatus(saved) {
  const pill = $("#agent-status");
  const status = saved && LABELS[saved.status] ? saved.status : null;
  pill.className = `pill ${status || "unknown"}`;
  pill.textContent = status ? LABELS[status] + (saved.pause_id ? ` (pause ${saved.pause_id})` : "") : "Status not set";
  showTime($("#agent-status-since"), status ? new Date(saved.at) : null);
  $("#agent-status-since").hidden = !status;
  for (const button of document.querySelectorAll("#agent-state [data-status]")) {
    const current = button.dataset.status === status;
    button.classList.toggle("current", current);
    button.setAttribute("aria-pressed", String(current));
  }
}

export function restoreStatus() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(statusKey()) || "null"); } catch (error) { saved = null; }
  showStatus(saved);
}

async function setStatus(status) {
  const result = $("#agent-state-result");
  say(result, "Setting…");
  try {
    const answer = await api("PUT", `${agentPath()}/status`, { status });
    const saved = { status: answer.status || status, pause_id: answer.pause_id || null, at: Date.now() };
    localStorage.setItem(statusKey(), JSON.stringify(saved));
    showStatus(saved);
    const checkIn = answer.check_in_number ? ` Dial ${answer.check_in_number} to finish checking in.` : "";
    say(result, `You are ${status}.${checkIn}`, "ok");
  } catch (error) {
    if (error.status === 501) return unsupported(status, result);
    say(result, error.message, "error");
  }
}

// Calls in progress ------------------------------------------------------------------------------

async function loadResultCodes() {
  if (resultCodes) return resultCodes;
  try {
    const query = new URLSearchParams({ agent: state.extension });
    resultCodes = (await api("GET", `/api/v1/result-codes?${query}`)).result_codes;
  } catch (error) {
    if (error.status === 501) state.unsupported.add("dispose");
    return [];  // asked again with the next call
  }
  return resultCodes;
}

export async function loadActive() {
  clearTimeout(activeTimer);
  if (!state.extension || $("#active-calls").hidden) return;
  let calls;
  try {
    calls = (await api("GET", `${agentPath()}/calls`)).calls;
  } catch (error) {
    if (error.status === 501) $("#active-calls").hidden = true;  // the provider lists no calls
    else say($("#active-result"), error.message, "error");
    return;
  }
  const codes = calls.length ? await loadResultCodes() : [];
  $("#no-active").hidden = calls.length > 0;
  $("#active-list").replaceChildren(...calls.map((call) => activeCall(call, codes)));
  hideUnsupported($("#active-list"));
  if (calls.length) activeTimer = setTimeout(loadActive, ACTIVE_POLL_MS);
}

function activeCall(call, codes) {
  const item = $("#active-template").content.firstElementChild.cloneNode(true);
  item.dataset.callId = call.call_id;
  const number = call.phone_number || "";
  item.querySelector(".active-number").textContent = number;
  item.querySelector(".active-name").textContent = call.customer_name || "";
  item.querySelector(".active-since").textContent = call.start_time ? `since ${call.start_time}` : "";
  for (const button of item.querySelectorAll("button[data-action]")) {
    button.setAttribute("aria-label", `${button.textContent} the call with ${number || call.call_id}`);
    button.addEventListener("click", () => callAction(call.call_id, button.dataset.action));
  }
  const form = item.querySelector("form.dispose");
  const select = form.querySelector("select");
  for (const code of codes) {
    const option = document.createElement("option");
    option.value = code.code;
    option.textContent = code.description || code.code;
    select.append(option);
  }
  form.hidden = !codes.length;
  form.addEventListener("submit", (event) => {
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
    say(result, `${action.replace("-", " ")}: done.`, "ok");
    if (action === "hangup" || action === "dispose") setTimeout(loadActive, 500);
  } catch (error) {
    if (error.status === 501) return unsupported(action, result);
    say(result, error.message, "error");
  }
}

// Recent calls: the journal filtered by the agent (a token may list no other) ---------------------

export async function loadCalls() {
  const body = $("#calls tbody");
  try {
    const query = new URLSearchParams({ agent: state.extension, limit: "10" });
    const page = await api("GET", `/api/v1/journal?${query}`);
    body.replaceChildren(...page.entries.map(journalRow));
  } catch (error) {
    body.replaceChildren();
  }
}

function journalRow(entry) {
  const log = entry.call_log || {};
  const row = document.createElement("tr");
  const when = document.createElement("td");
  const time = document.createElement("time");
  showTime(time, logTime(log.DateTime, document.body.dataset.timezone) || new Date(entry.created_at));
  when.append(time);
  row.append(when);
  for (const value of [log.CallType, log.Number, log.Name, entry.status]) {
    const cell = document.createElement("td");
    cell.textContent = value || "";
    row.append(cell);
  }
  return row;
}

export function setUpCalls() {
  for (const button of document.querySelectorAll("#agent-state [data-status]")) {
    button.addEventListener("click", () => setStatus(button.dataset.status));
  }
  $("#refresh-calls").addEventListener("click", loadCalls);
  $("#refresh-active").addEventListener("click", loadActive);
}
