// Saves the connection and the CRM sites. Chrome grants the extension access to exactly these
// origins (the middleware's and the CRM's), asked for at run time; the tel: link handler is then
// registered on the CRM's pages only (background.js).
"use strict";

const fields = ["url", "key", "extension"];

function origin(text) {
  try {
    const parsed = new URL(text.trim());
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : null;
  } catch (error) {
    return null;
  }
}

// What was saved fills the form once read; a field the agent typed into meanwhile keeps what was
// typed. The form says it is ready (data-ready) when the saved values are in.
chrome.storage.local.get([...fields, "origins"]).then((saved) => {
  const fill = (id, value) => {
    const input = document.getElementById(id);
    if (!input.value) input.value = value;
  };
  for (const name of fields) fill(name, saved[name] || "");
  fill("origins", (saved.origins || []).join("\n"));
  document.getElementById("options").dataset.ready = "true";
});

document.getElementById("options").addEventListener("submit", (event) => {
  event.preventDefault();
  const status = document.getElementById("saved");
  const values = {};
  for (const name of fields) values[name] = document.getElementById(name).value.trim();
  values.url = values.url.replace(/\/+$/, "");
  const lines = document.getElementById("origins").value.split(/[\s,]+/).filter(Boolean);
  const origins = lines.map(origin);
  const middleware = origin(values.url);
  if (!middleware || origins.includes(null)) {
    status.textContent = "Each address must be an http:// or https:// web address.";
    status.className = "error";
    return;
  }
  values.origins = [...new Set(origins)];
  // The middleware's host on any port (a pattern without a port matches every port): its stream
  // paths may redirect (307) to the stream server beside it on another port.
  const service = new URL(middleware);
  const wanted = [`${service.protocol}//${service.hostname}/*`, ...values.origins.map((o) => `${o}/*`)];
  // Asked at once, while the click still counts as the agent's gesture.
  chrome.permissions.request({ origins: wanted }).then(async (granted) => {
    if (!granted) {
      status.textContent = "Not saved: the extension needs access to these sites.";
      status.className = "error";
      return;
    }
    const { origins: before = [] } = await chrome.storage.local.get("origins");
    const dropped = before.filter((o) => !values.origins.includes(o) && o !== middleware);
    if (dropped.length) await chrome.permissions.remove({ origins: dropped.map((o) => `${o}/*`) });
    await chrome.storage.local.set(values);
    status.textContent = "Saved. Listening for calls to extension " + values.extension + ".";
    status.className = "";
  });
});
