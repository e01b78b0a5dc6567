// The API client: Bearer token from localStorage, JSON in and out, and the app-wide
// rules that any 401 signs the user out and that a 404 on a route means "not available
// on this master" (parts of the API land separately), never a broken page.

const BASE = "/api/v1";
const KEY = "token";

/** A failed request: HTTP status and the API's `detail` text. */
export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

let onUnauthorized = () => {};

/** Registers what happens on a 401 (the app goes to the login page). */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

/** The stored token, or null. */
export function token() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

/** Stores or clears the token. */
export function setToken(t) {
  try { if (t) localStorage.setItem(KEY, t); else localStorage.removeItem(KEY); } catch { /* private mode */ }
}

/** A query string from an object, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : "";
}

/** Whether `e` says the route does not exist on this master yet. */
export function notAvailable(e) {
  return e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 501);
}

async function request(path, { method = "GET", body, query, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (auth && t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(BASE + path + qs(query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "The master is unreachable");
  }
  if (r.status === 401 && auth) {
    setToken(null);
    onUnauthorized();
  }
  return r;
}

async function failure(r) {
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  const d = body && body.detail;
  const detail = typeof d === "string" ? d : d ? JSON.stringify(d) : r.statusText;
  return new ApiError(r.status, detail, body);
}

/** A JSON request; resolves with the body (null for 204), throws ApiError. */
export async function api(path, opts = {}) {
  const r = await request(path, opts);
  if (!r.ok) throw await failure(r);
  if (r.status === 204) return null;
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

/** A download: fetches with the token and saves the body under `name`. */
export async function download(path, query, name) {
  const r = await request(path, { query });
  if (!r.ok) throw await failure(r);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** The rows of a paged answer, whether it is `{data: […]}` or a bare list. */
export function rows(page) {
  if (Array.isArray(page)) return page;
  return page && Array.isArray(page.data) ? page.data : [];
}
