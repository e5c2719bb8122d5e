// The agent page: sign in with an agent token, then a workspace kept open all day: live screen
// pops (an unknown caller's number_info and a "new contact" form), the agent's status (live, as
// the board has it) and queues, calls in progress, callbacks (take, call back), contact search,
// a dial box and the agent's recent calls.
import { $, state } from "./agent/api.js";
import { callbackChanged, loadCallbacks } from "./agent/callbacks.js";
import { loadActive, loadCalls, setUpCalls } from "./agent/calls.js";
import { setUpFinding } from "./agent/find.js";
import { offerNotifications, showPop } from "./agent/pops.js";
import { loadQueues, loadStatus, setUpStatus, statusChanged } from "./agent/status.js";
import { close, connect } from "./agent/stream.js";

const RELOAD_AFTER_MS = 60000;

const streamHandlers = {
  onOpen(away) {
    $("#stream-error").hidden = true;
    if (!state.signedIn) return showDesk();
    loadStatus();  // whatever changed while the stream was away
    // A resumed stream replays what it missed (Last-Event-ID); after a long gap, read them afresh.
    if (away > RELOAD_AFTER_MS) loadCallbacks();
  },
  onPop(pop) {
    showPop(pop);
    setTimeout(loadCalls, 1500);
    loadActive();
  },
  onCallback: callbackChanged,
  onStatus: statusChanged,
  onRefused: refused,
};

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

function signIn(extension, key) {
  state.extension = extension;
  state.key = key;
  state.signedIn = false;
  $("#sign-in-error").hidden = true;
  connect(streamHandlers);
}

function showDesk() {
  state.signedIn = true;
  localStorage.setItem("cti.extension", state.extension);
  sessionStorage.setItem("cti.key", state.key);
  $("#sign-in").hidden = true;
  $("#desk").hidden = false;
  $("#who").hidden = false;
  $("#ext-label").textContent = state.extension;
  loadStatus();
  loadQueues();
  offerNotifications();
  loadCalls();
  loadActive();
  loadCallbacks();
}

function signOut() {
  close();
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
$("#sign-out").addEventListener("click", signOut);
$("#refresh-callbacks").addEventListener("click", loadCallbacks);
setUpCalls();
setUpStatus();
setUpFinding();
document.addEventListener("cti:call-placed", () => {
  setTimeout(loadActive, 1500);
  setTimeout(loadCalls, 4500);  // a call's log is made once its legs have settled
});
document.addEventListener("visibilitychange", () => {
  if (state.signedIn && document.visibilityState === "visible") loadActive();
});

$("#extension").value = localStorage.getItem("cti.extension") || "";
if (!signInFromLink() && $("#extension").value && sessionStorage.getItem("cti.key")) {
  signIn($("#extension").value, sessionStorage.getItem("cti.key"));
}
