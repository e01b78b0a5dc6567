// Formatting of numbers and times. The API's times are UTC `YYYY-MM-DD HH:MM:SS`.

const nf = new Intl.NumberFormat();

/** 12,345. */
export function num(n) {
  return typeof n === "number" && Number.isFinite(n) ? nf.format(n) : "—";
}

/** A Date from an API time (UTC), or null. */
export function parseTime(t) {
  if (!t || typeof t !== "string") return null;
  const iso = t.includes("T") ? t : t.replace(" ", "T");
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n) => String(n).padStart(2, "0");

/** `2026-12-01 15:04:05` in local time. */
export function time(t) {
  const d = parseTime(t);
  if (!d) return t ? String(t) : "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `15:04:05` in local time. */
export function clock(t) {
  const d = parseTime(t);
  return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : "—";
}

/** `3 min ago`. */
export function ago(t) {
  const d = parseTime(t);
  if (!d) return "—";
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A JSON value or JSON text, pretty-printed. */
export function pretty(v) {
  if (typeof v === "string") {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
  }
  return JSON.stringify(v, null, 2);
}

/** `fields` of a log row as an object (the API sends JSON text). */
export function fieldsOf(row) {
  if (!row || row.fields === undefined || row.fields === null) return {};
  if (typeof row.fields === "object") return row.fields;
  try { const f = JSON.parse(row.fields); return f && typeof f === "object" ? f : {}; } catch { return {}; }
}

/** A list from a JSON list or JSON text of one. */
export function list(v) {
  if (Array.isArray(v)) return v;
  if (typeof v === "string") { try { const p = JSON.parse(v); return Array.isArray(p) ? p : []; } catch { return []; } }
  return [];
}

/** Status chip class for a decky or lifecycle state. */
export function stateClass(s) {
  const v = String(s || "").toLowerCase();
  if (["running", "up", "ok", "healthy", "success", "succeeded", "done", "completed"].includes(v)) return "ok";
  if (["degraded", "pending", "deploying", "queued", "mutating", "tearing_down"].includes(v)) return "warn";
  if (["failed", "error", "down", "torn_down", "unhealthy"].includes(v)) return "bad";
  return "";
}
