// The supervisor console: sign in with a supervisor token, the live board (one tile per agent, kept
// live from the board stream), callbacks to assign or dismiss, call logs the CRM has not taken (with
// retry), and call reports as charts (Chart.js, vendored). Everything comes from the API; the page
// holds no data of its own.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const state = {
  key: null, signedIn: false, source: null, reconnect: null, failures: 0,
  agents: new Map(), buffered: null, clockOffset: 0, agentOptions: "", poll: null, ticks: 0,
};
const POLL_MS = 5000;  // callbacks every tick, call logs every other one, reports every 12th
const STATUS_WORDS = { available: "Available", paused: "Paused", offline: "Offline", unknown: "Unknown" };

function headers(accept = "application/json") {
  return { "X-API-Key": state.key, "Content-Type": "application/json", Accept: accept };
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.statusText || `HTTP ${response.status}`);
    error.status = response.status;
    error.code = data && data.code;
    throw error;
  }
  return data;
}

function say(selector, text, kind = "ok") {
  const element = $(selector);
  element.textContent = text;
  element.className = kind;
}

// Times ------------------------------------------------------------------------------------------

const serverNow = () => Date.now() + state.clockOffset;

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function talkTime(seconds) {
  if (!seconds) return "0 min";
  return seconds < 3600 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

// Today: "14:05 (12 minutes ago)"; another day: "3 Dec, 14:05". Browser local time.
function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() !== new Date().toDateString()) {
    return `${date.toLocaleDateString(undefined, { day: "numeric", month: "short" })}, ${time}`;
  }
  const minutes = Math.round((date.getTime() - Date.now()) / 60000);
  const ago = Math.abs(minutes) < 60 ? relative.format(minutes, "minute") : relative.format(Math.round(minutes / 60), "hour");
  return `${time} (${ago})`;
}

function timeElement(iso) {
  const element = document.createElement("time");
  element.dateTime = iso || "";
  element.textContent = when(iso);
  element.title = iso ? new Date(iso).toLocaleString() : "";
  return element;
}

function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

// The board --------------------------------------------------------------------------------------

function byExtension(a, b) {
  const numeric = /^\d+$/.test(a) && /^\d+$/.test(b);
  return numeric ? Number(a) - Number(b) : a.localeCompare(b);
}

function agentLabel(extension) {
  const agent = state.agents.get(extension);
  return agent && agent.name ? `${extension} ${agent.name}` : extension;
}

function tileFor(extension) {
  let tile = $(`#tiles [data-extension="${CSS.escape(extension)}"]`);
  if (tile) return tile;
  tile = $("#tile-template").content.firstElementChild.cloneNode(true);
  tile.dataset.extension = extension;
  const next = [...$("#tiles").children].find((other) => byExtension(other.dataset.extension, extension) > 0);
  $("#tiles").insertBefore(tile, next || null);
  return tile;
}

function showAgent(entry) {
  const previous = state.agents.get(entry.extension);
  state.agents.set(entry.extension, entry);
  const tile = tileFor(entry.extension);
  const status = STATUS_WORDS[entry.status] ? entry.status : "unknown";
  const call = entry.call;
  tile.className = `tile status-${status}${call ? ` ${call.state}` : ""}`;
  $(".tile-ext", tile).textContent = entry.extension;
  $(".tile-name", tile).textContent = entry.name || "";
  $(".tile-status", tile).textContent = STATUS_WORDS[status];
  $(".call-state", tile).textContent = call ? (call.state === "ringing" ? "Ringing" : "Talking") : "No call";
  $(".call-direction", tile).textContent = call ? (call.direction === "outbound" ? "↗ outbound" : "↙ inbound") : "";
  $(".call-number", tile).textContent = call ? (call.number || "withheld number") : "";
  const since = $(".call-since", tile);
  since.dataset.since = call && call.since ? call.since : "";
  since.textContent = call && call.since ? duration((serverNow() - Date.parse(call.since)) / 1000) : "";
  const today = entry.today || {};
  $(".today-calls", tile).textContent = today.calls ?? 0;
  $(".today-answered", tile).textContent = today.answered ?? 0;
  $(".today-missed", tile).textContent = today.missed ?? 0;
  $(".today-talk", tile).textContent = talkTime(today.talk_seconds);
  summarise();
  if (previous && previous.call && !call) setTimeout(refreshFollowUps, 1000);  // a call ended
}

function summarise() {
  const counts = { available: 0, paused: 0, offline: 0, unknown: 0, calls: 0 };
  for (const agent of state.agents.values()) {
    counts[STATUS_WORDS[agent.status] ? agent.status : "unknown"] += 1;
    if (agent.call) counts.calls += 1;
  }
  $("#board-empty").hidden = state.agents.size > 0;
  $("#board-summary").textContent = state.agents.size
    ? `${counts.available} available · ${counts.paused} paused · ${counts.calls} on a call · ${counts.offline} offline`
    : "";
  agentOptionsChanged();
}

function tick() {
  for (const since of document.querySelectorAll(".call-since[data-since]")) {
    if (since.dataset.since) since.textContent = duration((serverNow() - Date.parse(since.dataset.since)) / 1000);
  }
}

// The snapshot, then the stream's changes. Events that arrive while the snapshot loads are applied
// again after it, so a change is never lost behind an older snapshot.
async function loadBoard() {
  state.buffered = [];
  try {
    const board = await api("GET", "/api/v1/board");
    state.clockOffset = Date.parse(board.at) - Date.now() || 0;
    const known = new Set(board.agents.map((agent) => agent.extension));
    for (const tile of [...$("#tiles").children]) {
      if (!known.has(tile.dataset.extension)) { tile.remove(); state.agents.delete(tile.dataset.extension); }
    }
    board.agents.forEach(showAgent);
    for (const entry of state.buffered) showAgent(entry);
    summarise();
    return board;
  } finally {
    state.buffered = null;
  }
}

function streamBase() {
  return (document.body.dataset.streamUrl || "").replace(/\/$/, "");
}

function streamState(online, text) {
  $("#stream-dot").className = online ? "dot online" : "dot offline";
  $("#stream-state").textContent = text;
}

function connect() {
  if (state.source) state.source.close();
  clearTimeout(state.reconnect);
  const query = new URLSearchParams({ api_key: state.key });
  const source = new EventSource(`${streamBase()}/api/v1/board/events?${query}`);
  let dropped = false;
  source.addEventListener("open", () => {
    state.failures = 0;
    streamState(true, "Live");
    $("#stream-error").hidden = true;
    if (dropped) loadBoard().catch(() => {});  // changes made while away
    dropped = false;
  });
  source.addEventListener("error", () => {
    dropped = true;
    streamState(false, "Reconnecting…");
    if (source.readyState === EventSource.CLOSED) explainStream(source);
  });
  source.addEventListener("board", (message) => {
    const entry = JSON.parse(message.data);
    if (state.buffered) state.buffered.push(entry);
    showAgent(entry);
  });
  state.source = source;
}

// EventSource gives up on an answer other than 200 without saying why: ask once more to tell a
// refusal (shown in words) from a busy server (503 `busy`: retry after Retry-After, with jitter).
async function explainStream(source) {
  const again = (seconds) => {
    const jitter = Math.random() * Math.min(5, 1 + seconds / 2);
    state.reconnect = setTimeout(() => { if (state.source === source) connect(); }, (seconds + jitter) * 1000);
  };
  state.failures += 1;
  const backoff = Math.min(30, 2 ** state.failures);
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(`${streamBase()}/api/v1/board/events`, { headers: headers("text/event-stream"), signal: controller.signal, cache: "no-store" });
  } catch (error) {
    return again(backoff);  // the stream server is away: keep trying
  }
  if (response.ok) { controller.abort(); return again(0); }
  if (response.status === 503) {
    streamState(false, "Server busy, retrying…");
    return again(Number(response.headers.get("Retry-After")) || backoff);
  }
  const problem = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) return refused(response.status, problem.detail || response.statusText);
  return again(backoff);
}

function refusal(status, why) {
  if (status === 401) return `That token was not accepted (${why}). Ask your CRM for a new supervisor token.`;
  if (status === 403) return `That credential may not open the console (${why}). The console needs a supervisor token; an agent token opens /agent.`;
  return why;
}

function refused(status, why) {
  if (state.source) state.source.close();
  if (!state.signedIn) {
    say("#sign-in-error", refusal(status, why), "error");
    $("#sign-in-error").hidden = false;
    sessionStorage.removeItem("cti.console.key");
    return;
  }
  streamState(false, "Stopped");
  $("#stream-error").textContent = `The board stopped updating. ${refusal(status, why)}`;
  $("#stream-error").hidden = false;
}

// Callbacks --------------------------------------------------------------------------------------

async function allPages(path, field, pages = 10) {
  const found = [];
  let cursor = null;
  for (let page = 0; page < pages; page += 1) {
    const query = new URL(path, location.href).searchParams;
    if (cursor) query.set("cursor", cursor);
    const data = await api("GET", `${path.split("?")[0]}?${query}`);
    found.push(...data[field]);
    cursor = data.next;
    if (!cursor) break;
  }
  return found;
}

async function loadCallbacks() {
  let callbacks;
  try {
    const [open, assigned] = await Promise.all([
      allPages("/api/v1/callbacks?status=open&limit=100", "callbacks"),
      allPages("/api/v1/callbacks?status=assigned&limit=100", "callbacks"),
    ]);
    callbacks = [...open, ...assigned].sort((a, b) => Date.parse(a.first_missed_at) - Date.parse(b.first_missed_at));
  } catch (error) {
    return say("#callbacks-result", `Callbacks could not be loaded: ${error.message}`, "error");
  }
  const body = $("#callbacks-table tbody");
  placeRows(body, callbacks.map((callback) => callbackRow(callback)));
  $("#callbacks-table").hidden = !callbacks.length;
  $("#callbacks-empty").hidden = callbacks.length > 0;
  $("#callbacks-count").textContent = callbacks.length ? String(callbacks.length) : "";
}

// Rows are kept across refreshes and only moved when their order changes, so a poll neither undoes
// a choice being made in a row's select nor takes the keyboard focus from its buttons.
function placeRows(body, rows) {
  const wanted = new Set(rows);
  for (const old of [...body.children]) if (!wanted.has(old)) old.remove();
  rows.forEach((row, i) => { if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null); });
}

function callbackRow(callback) {
  let row = $(`#callbacks-table tr[data-id="${CSS.escape(String(callback.id))}"]`);
  if (!row) row = newCallbackRow(callback);
  row.className = callback.status;
  const cells = row.cells;
  const number = document.createElement("b");
  number.textContent = callback.number;
  const name = document.createElement("span");
  name.className = "muted";
  name.textContent = callback.name || "";
  cells[0].replaceChildren(number, name);
  cells[1].textContent = callback.missed === 1 ? "once" : `${callback.missed} times`;
  const first = document.createElement("span");
  first.className = "muted";
  if (callback.missed > 1) first.append("first ", timeElement(callback.first_missed_at));
  cells[2].replaceChildren(timeElement(callback.last_missed_at), first);
  const select = $("select", row);
  fillAgents(select, callback.agent);
  if (!select.dataset.dirty) select.value = callback.agent || "";
  row.dataset.agent = callback.agent || "";
  return row;
}

function newCallbackRow(callback) {
  const row = document.createElement("tr");
  row.dataset.id = callback.id;
  for (let i = 0; i < 3; i += 1) row.append(document.createElement("td"));
  row.cells[0].className = "caller";
  row.cells[2].className = "missed-at";
  const assignCell = document.createElement("td");
  const select = document.createElement("select");
  select.setAttribute("aria-label", `Agent for the callback to ${callback.number}`);
  select.addEventListener("change", () => { select.dataset.dirty = select.value !== row.dataset.agent ? "1" : ""; });
  const assign = document.createElement("button");
  assign.type = "button";
  assign.textContent = "Assign";
  assign.setAttribute("aria-label", `Assign the callback to ${callback.number}`);
  assign.addEventListener("click", () => assignCallback(row, select));
  assignCell.className = "assign";
  assignCell.append(select, assign);
  const actions = document.createElement("td");
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "secondary";
  dismiss.textContent = "Dismiss";
  dismiss.setAttribute("aria-label", `Dismiss the callback to ${callback.number}`);
  dismiss.addEventListener("click", () => dismissCallback(row, callback.number));
  actions.append(dismiss);
  row.append(assignCell, actions);
  return row;
}

function fillAgents(select, assigned) {
  const extensions = [...state.agents.keys()].sort(byExtension);
  if (assigned && !extensions.includes(assigned)) extensions.push(assigned);
  const signature = extensions.map(agentLabel).join("|");
  if (select.dataset.options === signature) return;
  const value = select.value;
  const nobody = new Option("Nobody (open)", "");
  select.replaceChildren(nobody, ...extensions.map((extension) => new Option(agentLabel(extension), extension)));
  select.value = value;
  select.dataset.options = signature;
}

function agentOptionsChanged() {
  for (const row of document.querySelectorAll("#callbacks-table tbody tr")) fillAgents($("select", row), row.dataset.agent);
}

async function assignCallback(row, select) {
  const agent = select.value || null;
  try {
    const callback = await api("POST", `/api/v1/callbacks/${encodeURIComponent(row.dataset.id)}/assign`, { agent });
    select.dataset.dirty = "";
    say("#callbacks-result", agent ? `The callback to ${callback.number} is ${agentLabel(agent)}'s.` : `The callback to ${callback.number} is open again.`);
  } catch (error) {
    say("#callbacks-result", `Not assigned: ${error.message}`, "error");
  }
  loadCallbacks();
}

async function dismissCallback(row, number) {
  try {
    await api("POST", `/api/v1/callbacks/${encodeURIComponent(row.dataset.id)}/dismiss`);
    say("#callbacks-result", `The callback to ${number} was dismissed.`);
  } catch (error) {
    say("#callbacks-result", `Not dismissed: ${error.message}`, "error");
  }
  loadCallbacks();
}

// Call logs the CRM has not taken ------------------------------------------------------------------

function journalRow(body, entry, withRetry) {
  const version = JSON.stringify([entry.status, entry.attempts, entry.last_error]);
  const kept = $(`tr[data-id="${CSS.escape(String(entry.id))}"]`, body);
  if (kept && kept.dataset.version === version) return kept;
  const log = entry.call_log || {};
  const row = document.createElement("tr");
  row.dataset.id = entry.id;
  row.dataset.version = version;
  row.className = entry.status;
  const agentName = [log.AgentFirstName, log.AgentLastName].filter(Boolean).join(" ");
  const legAgent = (entry.legs || []).map((leg) => leg.agent).find(Boolean);
  const call = document.createElement("td");
  call.append(`${log.CallType || entry.source} `, timeElement(entry.created_at));
  row.append(call);
  for (const value of [log.Number || "", agentName || legAgent || "", entry.attempts]) {
    const cell = document.createElement("td");
    cell.textContent = value;
    row.append(cell);
  }
  const error = document.createElement("td");
  error.className = "error-text";
  error.textContent = entry.last_error || "";
  row.append(error);
  if (withRetry) {
    const cell = document.createElement("td");
    const retry = document.createElement("button");
    retry.type = "button";
    retry.textContent = "Retry";
    retry.setAttribute("aria-label", `Retry the call log of ${log.Number || `entry ${entry.id}`}`);
    retry.addEventListener("click", () => retryEntries([entry.id]));
    cell.append(retry);
    row.append(cell);
  }
  return row;
}

async function loadJournal() {
  let failed;
  let pending;
  try {
    [failed, pending] = await Promise.all([
      api("GET", "/api/v1/journal?status=failed&limit=100"),
      api("GET", "/api/v1/journal?status=pending&limit=100"),
    ]);
  } catch (error) {
    return say("#journal-result", `Call logs could not be loaded: ${error.message}`, "error");
  }
  for (const [name, page, withRetry] of [["failed", failed, true], ["pending", pending, false]]) {
    const entries = page.entries;
    const body = $(`#${name}-table tbody`);
    placeRows(body, entries.map((entry) => journalRow(body, entry, withRetry)));
    $(`#${name}-table`).hidden = !entries.length;
    $(`#${name}-empty`).hidden = entries.length > 0;
    $(`#${name}-count`).textContent = entries.length ? `${entries.length}${page.next ? "+" : ""}` : "";
  }
  $("#retry-all").disabled = !failed.entries.length;
}

async function retryEntries(ids) {
  let done = 0;
  const problems = [];
  for (const id of ids) {
    try {
      await api("POST", `/api/v1/journal/${encodeURIComponent(id)}/retry`);
      done += 1;
    } catch (error) {
      if (error.status !== 409) problems.push(error.message);  // 409: no longer failed
    }
  }
  const text = `${done} call log${done === 1 ? "" : "s"} sent again.`;
  say("#journal-result", problems.length ? `${text} ${problems[0]}` : text, problems.length ? "error" : "ok");
  await loadJournal();
  setTimeout(loadJournal, 2500);  // the delivery's outcome
}

async function retryAllFailed() {
  $("#retry-all").disabled = true;
  try {
    const failed = await allPages("/api/v1/journal?status=failed&limit=1000", "entries");
    await retryEntries(failed.map((entry) => entry.id));
  } catch (error) {
    say("#journal-result", error.message, "error");
    $("#retry-all").disabled = false;
  }
}

// Reports ----------------------------------------------------------------------------------------

const COLOURS = { calls: "#1f6feb", answered: "#1a7f37", missed: "#cf222e", talk: "#8250df" };
const REPORTS = {
  hour: { title: "hour", series: ["calls", "missed"], label: (key) => key },
  day: { title: "day", series: ["calls", "answered", "missed"], label: (key) => key.slice(5) },
  agent: { title: "agent", series: ["talk"], label: (key) => (key ? agentLabel(key) : "No agent") },
};

function reportQuery(by) {
  const query = new URLSearchParams({ by });
  if (by !== "hour") {  // the hour chart is today's, in the middleware's time zone
    query.set("from", $("#range-from").value);
    query.set("to", $("#range-to").value);
  }
  return query;
}

function drawChart(by, report) {
  const spec = REPORTS[by];
  const canvas = $(`#chart-${by}`);
  const value = (row, name) => (name === "talk" ? Math.round(row.talk_seconds / 6) / 10 : row[name]);
  const data = {
    labels: report.rows.map((row) => spec.label(row.key)),
    datasets: spec.series.map((name) => ({
      label: name === "talk" ? "Talk minutes" : name[0].toUpperCase() + name.slice(1),
      data: report.rows.map((row) => value(row, name)),
      backgroundColor: COLOURS[name],
      borderColor: COLOURS[name],
    })),
  };
  const chart = Chart.getChart(canvas);
  if (chart) {
    chart.data = data;
    chart.update();
  } else {
    new Chart(canvas, {
      type: "bar",
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: { duration: 200 },
        indexAxis: by === "agent" ? "y" : "x",
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }
  const totals = report.totals;
  canvas.setAttribute("aria-label", `${canvas.getAttribute("aria-label").split(":")[0]}: ${totals.calls} calls, ${totals.answered} answered, ${totals.missed} missed, ${talkTime(totals.talk_seconds)} talk time`);
  reportTable($(`.chart[data-report="${by}"] .report-table`), spec, report);
}

function reportTable(table, spec, report) {
  const head = document.createElement("tr");
  for (const name of [spec.title, "calls", "answered", "missed", "talk"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    head.append(th);
  }
  const rows = [...report.rows, { key: "total", ...report.totals }].map((row) => {
    const tr = document.createElement("tr");
    for (const value of [row.key === "total" ? "Total" : spec.label(row.key), row.calls, row.answered, row.missed, talkTime(row.talk_seconds)]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

async function loadReports() {
  $("#reports-error").hidden = true;
  try {
    const reports = await Promise.all(Object.keys(REPORTS).map((by) => api("GET", `/api/v1/reports/calls?${reportQuery(by)}`)));
    Object.keys(REPORTS).forEach((by, i) => drawChart(by, reports[i]));
  } catch (error) {
    say("#reports-error", `Reports could not be loaded: ${error.message}`, "error");
    $("#reports-error").hidden = false;
  }
}

// The CSV carries the credential in a header (a link cannot), so it is fetched and saved as a file.
async function downloadCsv(by) {
  const query = reportQuery(by);
  query.set("format", "csv");
  try {
    const response = await fetch(`/api/v1/reports/calls?${query}`, { headers: headers("text/csv"), cache: "no-store" });
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || response.statusText);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = by === "hour" ? `calls-by-hour-${localDate(new Date())}.csv` : `calls-by-${by}-${query.get("from")}-to-${query.get("to")}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    say("#reports-error", `The CSV could not be downloaded: ${error.message}`, "error");
    $("#reports-error").hidden = false;
  }
}

// Signing in and keeping up ------------------------------------------------------------------------

function refreshFollowUps() {
  loadCallbacks();
  loadJournal();
}

function poll() {
  if (document.hidden || !state.signedIn) return;
  state.ticks += 1;
  loadCallbacks();
  if (state.ticks % 2 === 0) loadJournal();
  if (state.ticks % 12 === 0) loadReports();
  for (const time of document.querySelectorAll("#callbacks time, #journal time")) time.textContent = when(time.dateTime);
}

// Who signed in, for the header only: a supervisor token names its supervisor (the server checks
// the signature; the page only reads the name).
function whoIs(key) {
  try {
    const claims = JSON.parse(atob(key.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    if (claims.scope === "supervisor" && claims.sub) return `Signed in as ${claims.sub}`;
  } catch (error) { /* not a token: an API key */ }
  return "Signed in with an API key";
}

async function signIn(key) {
  state.key = key;
  $("#sign-in-error").hidden = true;
  try {
    await loadBoard();
  } catch (error) {
    const text = error.status ? refusal(error.status, error.message) : `The middleware could not be reached: ${error.message}`;
    say("#sign-in-error", text, "error");
    $("#sign-in-error").hidden = false;
    sessionStorage.removeItem("cti.console.key");
    $("#sign-in").hidden = false;
    return;
  }
  state.signedIn = true;
  sessionStorage.setItem("cti.console.key", key);
  $("#sign-in").hidden = true;
  $("#floor").hidden = false;
  $("#who").hidden = false;
  $("#who-name").textContent = whoIs(key);
  connect();
  refreshFollowUps();
  loadReports();
  state.poll = setInterval(poll, POLL_MS);
}

function signOut() {
  if (state.source) state.source.close();
  sessionStorage.removeItem("cti.console.key");
  location.reload();
}

// A CRM (or `make run`) may link to /console#token=...: the fragment never reaches a server log,
// and it is wiped from the address bar at once.
function signInFromLink() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return false;
  history.replaceState(null, "", location.pathname + location.search);
  signIn(token);
  return true;
}

const today = new Date();
$("#range-to").value = localDate(today);
$("#range-from").value = localDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 13));
$("#sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("#api-key").value.trim());
});
$("#range-form").addEventListener("submit", (event) => { event.preventDefault(); loadReports(); });
for (const button of document.querySelectorAll("button.csv")) button.addEventListener("click", () => downloadCsv(button.dataset.report));
$("#refresh-callbacks").addEventListener("click", loadCallbacks);
$("#refresh-journal").addEventListener("click", loadJournal);
$("#retry-all").addEventListener("click", retryAllFailed);
$("#sign-out").addEventListener("click", signOut);
document.addEventListener("visibilitychange", () => { if (!document.hidden && state.signedIn) { refreshFollowUps(); loadReports(); } });
setInterval(tick, 1000);

if (!signInFromLink() && sessionStorage.getItem("cti.console.key")) signIn(sessionStorage.getItem("cti.console.key"));
