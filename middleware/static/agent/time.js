// Times in the browser's own time zone: relative for today ("3 min ago"), else a local date and
// time. Every <time data-at> on the page is rewritten each 30 s, so "just now" does not stay.

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dated = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

export function relative(date, now = new Date()) {
  if (!sameDay(date, now)) return dated.format(date);
  const seconds = Math.round((now - date) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min ago`;
}

// Shows `date` in a <time> element: relative text, the exact local time as its tooltip.
export function showTime(element, date) {
  if (!date || Number.isNaN(date.getTime())) {
    element.textContent = "";
    delete element.dataset.at;
    return;
  }
  element.dateTime = date.toISOString();
  element.dataset.at = String(date.getTime());
  element.title = full.format(date);
  element.textContent = relative(date);
}

export function clockTime(date) {
  return clock.format(date);
}

export function refreshTimes() {
  const now = new Date();
  for (const element of document.querySelectorAll("time[data-at]")) {
    element.textContent = relative(new Date(Number(element.dataset.at)), now);
  }
}

// The offset of `zone` from UTC, in minutes, at the instant `date`.
function offsetMinutes(date, zone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date);
  const get = (type) => Number(parts.find((part) => part.type === type).value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return (asUtc - date.getTime()) / 60000;
}

// A call log's `DateTime` ("dd-mm-yy hh:mm:ss", the wall clock of CTI_TIMEZONE) as an instant.
export function logTime(text, zone) {
  const match = /^(\d\d)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(text || "");
  if (!match) return null;
  const [, day, month, year, hour, minute, second] = match.map(Number);
  const wall = Date.UTC(2000 + year, month - 1, day, hour, minute, second);
  try {
    let instant = wall - offsetMinutes(new Date(wall), zone) * 60000;
    instant = wall - offsetMinutes(new Date(instant), zone) * 60000;  // across a DST change
    return new Date(instant);
  } catch (error) {
    return null;  // a zone this browser does not know
  }
}

setInterval(refreshTimes, 30000);
