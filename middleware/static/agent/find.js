// Finding a contact in the CRM (its autocomplete) and calling one of its numbers; the dial box.
import { $, api, placeCall, say } from "./api.js";

const NUMBERS = [["mobile_phone", "mobile"], ["business_phone", "business"], ["business_phone2", "business 2"]];

async function search(event) {
  event.preventDefault();
  const term = $("#search-term").value.trim();
  const result = $("#search-result");
  say(result, "Searching…");
  try {
    const found = await api("GET", `/api/v1/contacts/search?${new URLSearchParams({ term })}`);
    $("#search-results").replaceChildren(...found.results.map(contactItem));
    const count = found.results.length;
    say(result, count ? `${count} found.` : `No contact matches “${term}”.`, count ? "" : "muted");
  } catch (error) {
    $("#search-results").replaceChildren();
    say(result, error.message, "error");
  }
}

function contactItem(contact) {
  const element = $("#result-template").content.firstElementChild.cloneNode(true);
  const name = contact.name || contact.company || "Unnamed contact";
  element.querySelector(".result-name").textContent = name;
  element.querySelector(".result-company").textContent = contact.name && contact.company ? contact.company : "";
  const numbers = element.querySelector(".result-numbers");
  const seen = new Set();
  for (const [field, label] of NUMBERS) {
    const number = contact[field];
    if (!number || seen.has(number)) continue;
    seen.add(number);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Call ${number}`;
    button.setAttribute("aria-label", `Call ${number} (${name}, ${label})`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      await placeCall(number, $("#search-result"));
      button.disabled = false;
    });
    numbers.append(button);
  }
  if (!seen.size) numbers.textContent = "No number in the CRM.";
  return element;
}

async function dial(event) {
  event.preventDefault();
  await placeCall($("#dial-number").value, $("#dial-result"));
}

export function setUpFinding() {
  $("#search-form").addEventListener("submit", search);
  $("#dial-form").addEventListener("submit", dial);
}
