// What every part of the agent page shares: who is signed in, and the API with its key.

export const $ = (selector, root = document) => root.querySelector(selector);

export const state = {
  extension: null,
  key: null,
  signedIn: false,
  unsupported: new Set(),  // operations the provider answered 501 to: their controls are hidden
};

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export function headers() {
  return { "X-API-Key": state.key, "Content-Type": "application/json", Accept: "application/json" };
}

export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  } catch (error) {
    throw new ApiError("The middleware cannot be reached; try again in a moment.", 0);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = null; }
  if (!response.ok) throw new ApiError((data && data.detail) || response.statusText, response.status);
  return data;
}

export const agentPath = () => `/api/v1/agents/${encodeURIComponent(state.extension)}`;

// A status line (role=status) saying how an action went.
export function say(element, text, kind = "") {
  element.textContent = text;
  element.className = kind;
}

// Places a click-to-call for this agent; says how it went in `result`. True when placed.
export async function placeCall(to, result) {
  say(result, `Calling ${to}…`);
  try {
    const call = await api("POST", "/api/v1/calls", { to, agent: state.extension });
    say(result, `Calling ${call.to} (via ${call.provider})`, "ok");
    result.title = `Call ${call.call_id}`;
    document.dispatchEvent(new CustomEvent("cti:call-placed", { detail: call }));
    return true;
  } catch (error) {
    say(result, error.message, "error");
    return false;
  }
}

// Hides every control of an operation the provider does not offer (501).
export function hideUnsupported(root = document) {
  for (const operation of state.unsupported) {
    for (const control of root.querySelectorAll(`[data-status="${operation}"], [data-action="${operation}"]`)) {
      control.hidden = true;
    }
  }
}

export function unsupported(operation, result) {
  state.unsupported.add(operation);
  hideUnsupported();
  say(result, "Your call center does not offer that.", "muted");
}
