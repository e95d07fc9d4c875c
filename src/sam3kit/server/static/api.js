// The page's client of the /v1 API: JSON in and out, the token, and errors as exceptions with the server's message.
// Every request goes to the server that served the page (relative URLs), never to another host.

const TOKEN_KEY = "sam3kit-token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let token = null;
const listeners = { unauthorized: [] };

export function initToken() {
  // A token given in the address fragment (#token=...) never reaches the server's log; keep it for this tab.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  token = value || null;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function onUnauthorized(fn) {
  listeners.unauthorized.push(fn);
}

function headers(extra = {}) {
  const h = { ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function fail(response) {
  let code = "http_error", message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    code = body.error || code;
    message = body.message || message;
  } catch (e) { /* not JSON */ }
  if (response.status === 401) listeners.unauthorized.forEach((fn) => fn(message));
  throw new ApiError(response.status, code, message);
}

export async function request(method, path, { json, body, contentType, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
    init.headers["Content-Type"] = contentType || "application/octet-stream";
  }
  const response = await fetch(path, init);
  if (!response.ok) await fail(response);
  return response;
}

export async function get(path, opts) {
  return (await request("GET", path, opts)).json();
}

export async function post(path, json, opts = {}) {
  return (await request("POST", path, { ...opts, json })).json();
}

export async function del(path) {
  return (await request("DELETE", path)).json();
}

export async function upload(path, file) {
  return (await request("POST", path, { body: file, contentType: file.type || "application/octet-stream" })).json();
}

export async function blob(path) {
  return (await request("GET", path)).blob();
}

// NDJSON: call onLine(object) for each line as it arrives; resolves at the end of the stream.
export async function stream(path, onLine, signal) {
  const response = await request("GET", path, { signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
  if (buffered.trim()) onLine(JSON.parse(buffered));
}
