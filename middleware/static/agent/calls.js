// Calls in progress (hold, retrieve, hang up, recording, disposition) and the agent's own recent
// calls. What the provider does not offer (501) is hidden. The status is status.js's.
import { $, agentPath, api, hideUnsupported, say, state, unsupported } from "./api.js";
import { logTime, showTime } from "./time.js";

const ACTIVE_POLL_MS = 30000;  // while a call is listed, so an ended one leaves the list
let resultCodes = null;
let activeTimer = null;

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
  $("#refresh-calls").addEventListener("click", loadCalls);
  $("#refresh-active").addEventListener("click", loadActive);
}
