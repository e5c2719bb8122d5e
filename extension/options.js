"use strict";

const fields = ["url", "key", "extension"];

chrome.storage.local.get(fields).then((saved) => {
  for (const name of fields) document.getElementById(name).value = saved[name] || "";
});

document.getElementById("options").addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = {};
  for (const name of fields) values[name] = document.getElementById(name).value.trim();
  values.url = values.url.replace(/\/+$/, "");
  await chrome.storage.local.set(values);
  document.getElementById("saved").textContent = "Saved. Listening for calls to extension " + values.extension + ".";
});
