// Turns tel: links on CRM pages into click-to-call requests through the middleware.
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

document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="tel:"]');
  if (!link) return;
  event.preventDefault();
  const to = decodeURIComponent(link.getAttribute("href").slice(4));
  chrome.runtime.sendMessage({ type: "dial", to }, (answer) => {
    if (chrome.runtime.lastError || !answer) toast("The CTI extension is not connected.", false);
    else toast(answer.message, answer.ok);
  });
}, true);
