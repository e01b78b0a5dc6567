// Overview: the four counters with their change over five minutes, the histogram, and
// the live feed of the newest events, all pushed by the stream (or polled without it).
import { h, mount, panel, empty } from "../dom.js";
import { api, rows, notAvailable } from "../api.js";
import { num, clock, ago } from "../format.js";
import { openLive, showMode } from "../live.js";
import { histogram } from "../chart.js";

const FEED = 12;
const WINDOW_MS = 5 * 60000;
const CARDS = [
  ["total_logs", "Total interactions"],
  ["unique_attackers", "Unique attackers"],
  ["active_deckies", "Active deckies"],
  ["deployed_deckies", "Deployed deckies"],
];
/** Counter samples kept across visits, for the five-minute deltas. */
const samples = [];

function feedRow(r, fresh) {
  return h("div", { class: ["feed-row", fresh ? "fresh" : ""], dataset: { id: String(r.id) } },
    h("span", { class: "mono muted", text: clock(r.timestamp) }),
    h("span", { class: "mono", text: r.attacker_ip || "—" }),
    h("span", {}, h("span", { class: "chip", text: r.service || "?" })),
    h("span", {}, h("b", { text: r.event_type || "" }), " ", h("span", { class: "muted", text: `${r.decky || ""} ${r.msg || ""}` })));
}

/** The overview page. */
export function render(page, ctx) {
  ctx.setTitle("Overview");
  const values = {};
  const deltas = {};
  const cards = CARDS.map(([key, label]) => {
    values[key] = h("div", { class: "stat-value num", id: `stat-${key}`, text: "—" });
    deltas[key] = h("div", { class: "stat-delta num", text: "" });
    return h("div", { class: "panel stat" }, h("div", { class: "stat-label", text: label }), values[key], deltas[key]);
  });
  const mode = h("span", { class: "live-dot", id: "live-mode", text: "connecting" });
  const chart = histogram();
  const feed = h("div", { class: "feed", id: "feed" });
  const attackersBox = h("div", { class: "feed" });

  mount(page,
    h("div", { class: "stats" }, cards),
    panel("Events, last 24 hours", mode, chart.el),
    h("div", { class: "grid two" },
      panel("Live feed", h("a", { href: "#/logs" }, "All logs →"), feed),
      panel("Recent attackers", h("a", { href: "#/attackers" }, "All attackers →"), attackersBox)));

  function showStats(s) {
    if (!s || typeof s !== "object") return;
    const now = Date.now();
    samples.push({ t: now, s });
    while (samples.length > 2 && now - samples[1].t > WINDOW_MS) samples.shift();
    const base = samples[0];
    for (const [key] of CARDS) {
      const v = s[key];
      const el = values[key];
      if (el.textContent !== num(v)) {
        el.textContent = num(v);
        el.parentElement.classList.add("flash");
        setTimeout(() => el.parentElement.classList.remove("flash"), 600);
      }
      const d = typeof v === "number" && typeof base.s[key] === "number" ? v - base.s[key] : 0;
      deltas[key].textContent = d > 0 ? `+${num(d)} in 5 min` : "no change in 5 min";
      deltas[key].classList.toggle("up", d > 0 && key !== "active_deckies" && key !== "deployed_deckies");
    }
  }

  function addLogs(list, fresh) {
    if (feed.querySelector(".empty")) feed.replaceChildren();
    const frag = document.createDocumentFragment();
    list.slice(0, FEED).forEach((r) => frag.append(feedRow(r, fresh)));
    feed.prepend(frag);
    while (feed.children.length > FEED) feed.lastElementChild.remove();
    if (!feed.children.length) mount(feed, empty("No events yet", "Attacks on the deckies appear here as they happen."));
  }

  let close = () => {};
  let gone = false;
  Promise.allSettled([api("/stats"), api("/logs/histogram"), api("/logs", { query: { limit: FEED } })]).then(([s, hst, l]) => {
    if (gone) return;
    if (s.status === "fulfilled") showStats(s.value);
    if (hst.status === "fulfilled") chart.update(hst.value);
    const first = l.status === "fulfilled" ? rows(l.value) : [];
    addLogs(first, false);
    const since = first.reduce((m, r) => Math.max(m, r.id || 0), 0);
    close = openLive({
      since,
      onStats: showStats,
      onHistogram: chart.update,
      onLogs: (list) => addLogs(list, true),
      onMode: (m) => showMode(mode, m, "Live"),
    });
  });

  api("/attackers", { query: { limit: FEED, sort_by: "recent" } }).then((p) => {
    const list = rows(p);
    if (!list.length) { mount(attackersBox, empty("No attackers profiled yet")); return; }
    mount(attackersBox, list.map((a) => h("a", { class: "feed-row", href: `#/attackers/${encodeURIComponent(a.uuid)}` },
      h("span", { class: "mono muted", text: ago(a.last_seen) }),
      h("span", { class: "mono", text: a.ip }),
      h("span", { class: "num", text: `${num(a.event_count)} ev` }),
      h("span", { class: "muted", text: (Array.isArray(a.services) ? a.services : []).join(", ") }))));
  }).catch((e) => mount(attackersBox, notAvailable(e)
    ? empty("Attacker profiles are not available on this master yet", "They appear here once the profiler runs.")
    : empty("Could not load attackers", e.detail || "")));

  return () => { gone = true; close(); };
}
