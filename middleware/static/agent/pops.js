// Screen pops: the caller's card as the call rings; for an unknown caller what the number tells
// (number_info: "Mobile, South Africa, Vodacom") and a short form that creates the contact and turns
// the pop into the known caller's card. A desktop notification when the tab is hidden, once the
// agent has allowed them (asked on a click, never required).
import { $, api, say, state } from "./api.js";
import { showTime } from "./time.js";

const MOST_POPS = 30;  // a page open all day keeps the latest ones

function popUrl(result) {
  if (result.screen_pop_url) return result.screen_pop_url;
  const query = new URLSearchParams({ phone: result.phone || "", api_key: state.key });
  return `/pop?${query}`;
}

// What the number itself tells (the lookup's number_info): "Mobile, South Africa, Vodacom".
export function numberLine(info) {
  if (!info) return "";
  const type = !info.type || info.type === "unknown" ? "" : info.type.replaceAll("_", " ");
  const kind = type && type[0].toUpperCase() + type.slice(1);
  return [kind, info.description, info.carrier].filter(Boolean).join(", ");
}

function showKnown(item, result) {
  const contact = result.contact;
  item.classList.remove("unknown");
  item.querySelector(".pop-name").textContent = contact.name || contact.company || result.phone;
  item.querySelector(".pop-company").textContent = contact.company || "";
  item.querySelector(".pop-type").textContent = [contact.entity_type, result.stale ? "the CRM did not answer: this may be out of date" : ""].filter(Boolean).join(" · ");
  item.querySelector(".open-crm").href = popUrl(result);
  item.querySelector(".create-contact").hidden = true;
}

function showUnknown(item, pop) {
  item.classList.add("unknown");
  item.querySelector(".pop-name").textContent = pop.cid_name || "Unknown caller";
  item.querySelector(".pop-company").textContent = numberLine(pop.number_info);
  item.querySelector(".pop-type").textContent = pop.error ? `CRM lookup failed (${pop.error})` : "Not in the CRM";
  item.querySelector(".open-crm").href = popUrl(pop);
  const form = item.querySelector(".create-contact");
  form.hidden = !pop.phone;
  form.elements.phone.value = pop.phone || "";
  form.addEventListener("submit", (event) => createContact(event, item, form));
}

export function showPop(pop) {
  const item = $("#pop-template").content.firstElementChild.cloneNode(true);
  item.dataset.callId = pop.call_id || "";
  showTime(item.querySelector(".pop-time"), new Date());
  item.querySelector(".pop-phone").textContent = pop.phone || "unknown number";
  if (pop.found && pop.contact) showKnown(item, pop);
  else showUnknown(item, pop);
  $("#no-pops").hidden = true;
  $("#pops").prepend(item);
  while ($("#pops").children.length > MOST_POPS) $("#pops").lastElementChild.remove();
  notify(pop);
}

async function createContact(event, item, form) {
  event.preventDefault();
  const result = item.querySelector(".create-result");
  const body = {
    first_name: form.elements.first_name.value.trim(),
    last_name: form.elements.last_name.value.trim(),
    phone: form.elements.phone.value.trim(),
  };
  const button = form.querySelector("button");
  button.disabled = true;
  say(result, "Creating…", "create-result");
  try {
    const created = await api("POST", "/api/v1/contacts", body);
    // The card shows what the CRM now answers for the number (the lookup), as a ring would.
    const query = new URLSearchParams({ phone: body.phone });
    const found = await api("GET", `/api/v1/contacts/lookup?${query}`).catch(() => null);
    const shown = found && found.found ? found : { ...created, phone: created.contact.mobile_phone || body.phone, screen_pop_url: null };
    item.querySelector(".pop-phone").textContent = shown.phone;
    showKnown(item, shown);
    say(result, `Created ${created.contact.name || body.first_name}.`, "create-result ok");
    item.querySelector(".open-crm").focus();
  } catch (error) {
    say(result, error.message, "create-result error");
  } finally {
    button.disabled = false;
  }
}

// Desktop notifications --------------------------------------------------------------------------

function canNotify() {
  return "Notification" in window;
}

export function offerNotifications() {
  const button = $("#notify");
  if (!canNotify() || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const answer = await Notification.requestPermission();
    button.hidden = true;
    say($("#agent-state-result"), answer === "granted" ? "Desktop alerts on: a call rings here while this tab is hidden." : "Desktop alerts off.", "muted");
  }, { once: true });
}

function notify(pop) {
  if (!canNotify() || Notification.permission !== "granted" || document.visibilityState !== "hidden") return;
  const contact = pop.found && pop.contact;
  const title = contact ? `Call from ${contact.name || contact.company || pop.phone}` : `Call from ${pop.phone || "an unknown number"}`;
  const body = contact ? [contact.company, pop.phone].filter(Boolean).join(" · ") : numberLine(pop.number_info) || "Not in the CRM";
  try {
    const shown = new Notification(title, { body, tag: pop.call_id || undefined });
    shown.addEventListener("click", () => { window.focus(); shown.close(); });
  } catch (error) {
    // a browser that only notifies through a service worker: the page shows the pop anyway
  }
}
