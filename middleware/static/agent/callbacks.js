// Callbacks: the open ones (anyone's to take) and the agent's own, live from the stream's
// `event: callback` messages. "Take" assigns one to this agent; "Call back" places the call, and
// the server closes the callback once a call to its number is placed (docs/callbacks.md).
import { $, api, placeCall, say, state } from "./api.js";
import { showTime } from "./time.js";

const shown = new Map();  // id -> callback, the open ones and this agent's

function mine(callback) {
  return callback.status === "open" || (callback.status === "assigned" && callback.agent === state.extension);
}

export function callbackChanged(callback) {
  if (mine(callback)) shown.set(callback.id, callback);
  else shown.delete(callback.id);
  render();
}

export async function loadCallbacks() {
  const result = $("#callback-result");
  try {
    const own = new URLSearchParams({ status: "assigned", agent: state.extension });
    const [open, assigned] = await Promise.all([
      api("GET", "/api/v1/callbacks?status=open&limit=1000"),
      api("GET", `/api/v1/callbacks?${own}&limit=1000`),
    ]);
    shown.clear();
    for (const callback of [...open.callbacks, ...assigned.callbacks]) shown.set(callback.id, callback);
    render();
  } catch (error) {
    if (error.status === 403) $("#callbacks").hidden = true;
    else say(result, error.message, "error");
  }
}

function render() {
  const list = $("#callback-list");
  const focused = document.activeElement && document.activeElement.closest(".callback");
  const keep = focused && { id: focused.dataset.id, control: [...focused.querySelectorAll("button")].indexOf(document.activeElement) };
  const ordered = [...shown.values()].sort((a, b) => (b.agent === state.extension) - (a.agent === state.extension) || a.id - b.id);
  list.replaceChildren(...ordered.map(item));
  $("#no-callbacks").hidden = ordered.length > 0;
  $("#callback-count").textContent = String(ordered.length);
  if (keep) {
    const again = list.querySelector(`.callback[data-id="${keep.id}"]`);
    const control = again && again.querySelectorAll("button")[keep.control];
    if (control && !control.hidden) control.focus();
  }
}

function item(callback) {
  const element = $("#callback-template").content.firstElementChild.cloneNode(true);
  element.dataset.id = String(callback.id);
  element.dataset.status = callback.status;
  const number = callback.number;
  element.querySelector(".callback-number").textContent = number;
  element.querySelector(".callback-name").textContent = callback.name || "";
  element.querySelector(".callback-missed").textContent = callback.missed === 1 ? "1 missed call" : `${callback.missed} missed calls`;
  showTime(element.querySelector(".callback-when"), new Date(callback.last_missed_at));
  const taken = callback.status === "assigned";
  element.querySelector(".callback-owner").textContent = taken ? "· yours" : "· open";
  const take = element.querySelector(".take");
  take.hidden = taken;
  take.setAttribute("aria-label", `Take the callback to ${number}`);
  take.addEventListener("click", () => takeCallback(callback, take));
  const call = element.querySelector(".call-back");
  call.setAttribute("aria-label", `Call back ${number}`);
  call.addEventListener("click", () => callBack(callback, call));
  return element;
}

async function takeCallback(callback, button) {
  const result = $("#callback-result");
  button.disabled = true;
  try {
    callbackChanged(await api("POST", `/api/v1/callbacks/${callback.id}/assign`, { agent: state.extension }));
    say(result, `The callback to ${callback.number} is yours.`, "ok");
  } catch (error) {
    say(result, error.status === 409 ? `Someone else took the callback to ${callback.number}.` : error.message, "error");
    if (error.status === 409) loadCallbacks();
  } finally {
    button.disabled = false;
  }
}

async function callBack(callback, button) {
  button.disabled = true;
  if (await placeCall(callback.number, $("#callback-result"))) {
    // The server closed it as the call was placed; its `callback` event removes it here too.
    loadCallbacks();
  }
  button.disabled = false;
}
