// Turns tel: links on the CRM's pages into click-to-call requests through the middleware. Chrome
// runs it only on the CRM origins the agent configured; it acts only on the agent's own clicks
// (a page's script clicking a link is ignored) and dials only once the agent confirms the number.
"use strict";

function toast(text, ok) {
  const box = document.createElement("div");
  box.className = "cti-toast";
  box.textContent = text;
  box.setAttribute("role", "status");
  box.style.cssText = "position:fixed;right:1rem;bottom:1rem;z-index:2147483647;padding:.6rem 1rem;" +
    "border-radius:6px;font:14px system-ui,sans-serif;color:#fff;background:" + (ok ? "#1a7f37" : "#cf222e");
  document.body.append(box);
  setTimeout(() => box.remove(), 6000);
}

function number(link) {
  try {
    return decodeURIComponent(link.getAttribute("href").slice(4)).trim();
  } catch (error) {
    return "";
  }
}

document.addEventListener("click", (event) => {
  if (!event.isTrusted) return;
  const link = event.target.closest && event.target.closest('a[href^="tel:"]');
  if (!link) return;
  event.preventDefault();
  const to = number(link);
  if (!to || !window.confirm(`Call ${to} from your extension?`)) return;
  chrome.runtime.sendMessage({ type: "dial", to }, (answer) => {
    if (chrome.runtime.lastError || !answer) toast("The CTI extension is not connected.", false);
    else toast(answer.message, answer.ok);
  });
}, true);
