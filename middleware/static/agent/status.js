// The agent's status and queues.
//
// The status shown is the board's: read with GET /api/v1/agents/{ext}/status each time the stream
// opens (so a gap while away is caught up), then kept current by the stream's `event: status`
// (each carries the agent's board entry), whoever changed it: this page, the phone, the PBX
// (cc_agent's agent:status, agent:checkin, agent:checkout pushes) or a supervisor. "Since" is
// when this browser saw the change (kept per extension in localStorage, so a reload keeps it);
// a status that changed while no page was open shows without it.
//
// Queues: where the provider lists them (GET .../queues), one checkbox each and a save button
// (PUT .../queues with the ticked ones); hidden where it answers 501.
import { $, agentPath, api, say, state, unsupported } from "./api.js";
import { showTime } from "./time.js";

const LABELS = { available: "Available", paused: "Paused", offline: "Offline" };
const shown = { status: undefined };

const sinceKey = () => `cti.status.${state.extension}`;

function remembered() {
  try { return JSON.parse(localStorage.getItem(sinceKey()) || "null"); } catch (error) { return null; }
}

// Shows `status` (available, paused, offline; anything else: not known). `live`: the change
// happened now (a stream event, or this page's own change), so it is "since" now.
function showStatus(status, live) {
  const known = LABELS[status] ? status : null;
  if (known === shown.status) return;
  shown.status = known;
  let at = null;
  if (known && live) {
    at = Date.now();
    localStorage.setItem(sinceKey(), JSON.stringify({ status: known, at }));
  } else if (known) {
    const saved = remembered();
    at = saved && saved.status === known ? saved.at : null;
  }
  const pill = $("#agent-status");
  pill.className = `pill ${known || "unknown"}`;
  pill.textContent = known ? LABELS[known] : "Status not set";
  showTime($("#agent-status-since"), at ? new Date(at) : null);
  $("#agent-status-since").hidden = !at;
  for (const button of document.querySelectorAll("#agent-state [data-status]")) {
    const current = button.dataset.status === known;
    button.classList.toggle("current", current);
    button.setAttribute("aria-pressed", String(current));
  }
}

export async function loadStatus() {
  try {
    const entry = await api("GET", `${agentPath()}/status`);
    showStatus(entry.status, false);
  } catch (error) {
    say($("#agent-state-result"), `Your status cannot be read: ${error.message}`, "error");
  }
}

// The stream's `event: status`: the agent's board entry as it is now.
export function statusChanged(entry) {
  if (entry.error) return loadStatus();  // the board could not be read when it was sent
  showStatus(entry.status, true);
}

async function setStatus(status) {
  const result = $("#agent-state-result");
  say(result, "Setting…");
  try {
    const answer = await api("PUT", `${agentPath()}/status`, { status });
    showStatus(answer.status || status, true);
    const checkIn = answer.check_in_number ? ` Dial ${answer.check_in_number} to finish checking in.` : "";
    say(result, `You are ${LABELS[status].toLowerCase()}.${checkIn}`, "ok");
  } catch (error) {
    if (error.status === 501) return unsupported(status, result);
    say(result, error.message, "error");
  }
}

// Queues ------------------------------------------------------------------------------------------

// Shown or hidden, and said so (data-offered) for whoever waits on it.
function offered(yes) {
  $("#queues").hidden = !yes;
  $("#queues").dataset.offered = yes ? "yes" : "no";
}

function queueName(queue) {
  return queue.name || `Queue ${queue.queue_id}`;
}

export async function loadQueues() {
  const result = $("#queues-result");
  let queues;
  try {
    queues = (await api("GET", `${agentPath()}/queues`)).queues;
  } catch (error) {
    if (error.status === 501) offered(false);  // the provider lists no queues
    else say(result, error.message, "error");
    return;
  }
  offered(true);
  $("#no-queues").hidden = queues.length > 0;
  $("#queues-form").hidden = !queues.length;
  $("#queue-list").replaceChildren(...queues.map((queue) => {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "queue";
    box.value = String(queue.queue_id);
    box.checked = queue.joined;
    box.dataset.name = queueName(queue);
    label.append(box, ` ${queueName(queue)}`);
    return label;
  }));
}

async function saveQueues(event) {
  event.preventDefault();
  const result = $("#queues-result");
  const ticked = [...document.querySelectorAll("#queue-list input:checked")];
  say(result, "Saving…");
  try {
    await api("PUT", `${agentPath()}/queues`, { queue_ids: ticked.map((box) => Number(box.value)) });
    const names = ticked.map((box) => box.dataset.name).join(", ");
    say(result, ticked.length ? `You are in ${names}.` : "You are in no queue.", "ok");
  } catch (error) {
    if (error.status === 501) offered(false);
    else say(result, error.message, "error");
  }
}

export function setUpStatus() {
  for (const button of document.querySelectorAll("#agent-state [data-status]")) {
    button.addEventListener("click", () => setStatus(button.dataset.status));
  }
  $("#queues-form").addEventListener("submit", saveQueues);
}
