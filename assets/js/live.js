// Live data: the SSE stream of engine.md §7.4 (a single-use ticket from
// /auth/sse-ticket, then `/stream?ticket=…`), or, where this master has no stream yet or
// it keeps failing, polling of /stats, /logs/histogram and /logs every few seconds. The
// page gets the same callbacks either way.
import { api, qs, notAvailable } from "./api.js";

const POLL_MS = 3000;
const RETRY_MS = 3000;
const MAX_FAILS = 3;

/**
 * Opens a live feed. handlers: onStats(stats), onHistogram(buckets), onLogs(rows newest
 * first), onMode("stream" | "poll" | "off"). `since`: the newest row id the page shows
 * (else the newest stored row is looked up). Returns a close function.
 */
export function openLive({ search = "", since, histogram = true, onStats, onHistogram, onLogs, onMode }) {
  let closed = false;
  let es = null;
  let timer = null;
  let lastId = 0;
  let fails = 0;
  const mode = (m) => onMode && onMode(m);

  const deliverLogs = (list) => {
    const fresh = list.filter((r) => typeof r.id === "number" && r.id > lastId).sort((a, b) => b.id - a.id);
    if (fresh.length) {
      lastId = fresh[0].id;
      if (onLogs) onLogs(fresh);
    }
  };

  async function pollOnce() {
    const jobs = [];
    if (onStats) jobs.push(api("/stats").then(onStats));
    if (onHistogram && histogram) jobs.push(api("/logs/histogram", { query: { search } }).then(onHistogram));
    if (onLogs) {
      jobs.push(api("/logs", { query: { limit: 50, search } }).then((p) => deliverLogs((p && p.data) || [])));
    }
    await Promise.allSettled(jobs);
  }

  function poll() {
    mode("poll");
    const tick = async () => {
      if (closed) return;
      await pollOnce();
      if (!closed) timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  async function stream() {
    if (closed) return;
    let ticket;
    try {
      ticket = await api("/auth/sse-ticket", { method: "POST" });
    } catch (e) {
      if (notAvailable(e) || ++fails >= MAX_FAILS) { poll(); return; }
      timer = setTimeout(stream, RETRY_MS);
      return;
    }
    if (closed || !ticket || !ticket.ticket) { if (!closed) poll(); return; }
    const params = { ticket: ticket.ticket, search };
    if (lastId) params.lastEventId = lastId;
    es = new EventSource(`/api/v1/stream${qs(params)}`);
    es.addEventListener("open", () => { fails = 0; mode("stream"); });
    es.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "stats" && onStats) onStats(msg.data);
      else if (msg.type === "histogram" && onHistogram && histogram) onHistogram(msg.data);
      else if (msg.type === "logs" && Array.isArray(msg.data)) deliverLogs(msg.data);
    });
    es.addEventListener("error", () => {
      // A ticket is single-use, so EventSource's own reconnect cannot work: close, and
      // fetch a new ticket; after repeated failures fall back to polling.
      if (es) es.close();
      es = null;
      if (closed) return;
      mode("off");
      if (++fails >= MAX_FAILS) poll();
      else timer = setTimeout(stream, RETRY_MS);
    });
  }

  // The stream and polling start after the newest row the page already has.
  if (typeof since === "number") {
    lastId = since;
    stream();
  } else {
    api("/logs", { query: { limit: 1, search } })
      .then((p) => { lastId = ((p && p.data) || []).reduce((m, r) => Math.max(m, r.id || 0), 0); })
      .catch(() => {})
      .finally(() => { if (!closed) stream(); });
  }

  return () => {
    closed = true;
    if (es) es.close();
    if (timer) clearTimeout(timer);
  };
}

/** Shows mode `m` on the dot `el`, as `word`, `word (polling)` or "reconnecting". */
export function showMode(el, m, word) {
  el.className = `live-dot ${m === "stream" ? "on" : m === "poll" ? "poll" : ""}`;
  el.textContent = m === "stream" ? word : m === "poll" ? `${word} (polling)` : "Reconnecting";
  el.dataset.mode = m;
}
