// Live logs: the stored events with the /logs search grammar, paged, and a live tail
// that prepends matching events as they are stored (first page only, so a reader on
// page three is never pushed around).
import { h, mount, panel } from "../dom.js";
import { api, rows, notAvailable } from "../api.js";
import { num, time, pretty } from "../format.js";
import { dataTable, pager } from "../table.js";
import { openLive, showMode } from "../live.js";

const LIMIT = 50;

/** Columns of a log row. */
export const LOG_COLUMNS = [
  { label: "Time", width: "172px", get: (r) => h("span", { class: "mono", text: time(r.timestamp) }) },
  { label: "Decky", width: "130px", get: (r) => r.decky || "" },
  { label: "Service", width: "90px", get: (r) => h("span", { class: "chip", text: r.service || "?" }) },
  { label: "Event", width: "130px", get: (r) => r.event_type || "" },
  { label: "Attacker", width: "130px", get: (r) => h("span", { class: "mono", text: r.attacker_ip || "" }) },
  { label: "Message", get: (r) => h("span", { class: "mono", text: r.msg || r.raw_line || "" }) },
];

/** The detail of one log row: its fields and the raw line. */
export function logDetail(r) {
  return h("dl", { class: "kv" },
    h("dt", { text: "id" }), h("dd", { class: "mono", text: String(r.id) }),
    h("dt", { text: "fields" }), h("dd", {}, h("pre", { class: "json", text: pretty(r.fields || "{}") })),
    h("dt", { text: "raw" }), h("dd", {}, h("pre", { class: "json", text: r.raw_line || "" })));
}

/** The live logs page. */
export function render(page, ctx) {
  ctx.setTitle("Live logs");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  let search = params.get("q") || "";
  let offset = 0;
  const input = h("input", { type: "search", id: "log-search", value: search, placeholder: "decky:web-01 service:ssh event:login_attempt attacker:1.2.3.4 user:root free text", "aria-label": "Search logs", dataset: { search: "" }, spellcheck: "false", autocomplete: "off" });
  const tail = h("input", { type: "checkbox", id: "live-tail", checked: true });
  const mode = h("span", { class: "live-dot" });
  const count = h("span", { class: "muted num", id: "log-total" });
  const table = dataTable({ columns: LOG_COLUMNS, expand: logDetail, emptyTitle: "No matching events", emptyText: "Change the search or wait for traffic." });
  const pg = pager((o) => { offset = o; load(); });
  const form = h("form", { class: "toolbar", role: "search" },
    h("div", { class: "search grow" }, input, h("kbd", { text: "/" })),
    h("button", { type: "submit", class: "primary" }, "Search"),
    h("label", { class: "check" }, tail, "Live tail"), mode);

  mount(page,
    form,
    h("div", { class: "hint" }, "Grammar: ", h("code", { text: "decky:" }), " ", h("code", { text: "service:" }), " ",
      h("code", { text: "event:" }), " ", h("code", { text: "attacker:" }), " ", h("code", { text: "<field>:value" }),
      " or free text; terms are AND-ed."),
    panel("Events", count, table.el, pg.el));

  let close = () => {};
  let shown = 0;
  let total = 0;
  function live() {
    close();
    mode.className = "live-dot";
    mode.textContent = "";
    if (!tail.checked || offset !== 0) return;
    close = openLive({
      search, histogram: false,
      onLogs: (list) => {
        total += list.length;
        shown = Math.min(LIMIT, shown + list.length);
        table.prepend(list, LIMIT);
        count.textContent = `${num(total)} events`;
        pg.update(total, 0, LIMIT, shown);
      },
      onMode: (m) => showMode(mode, m, "Tailing"),
    });
  }

  async function load() {
    close();
    try {
      const p = await api("/logs", { query: { limit: LIMIT, offset, search } });
      const list = rows(p);
      total = p.total || 0;
      shown = list.length;
      table.set(list);
      count.textContent = `${num(total)} events`;
      pg.update(total, offset, LIMIT, shown);
      live();
    } catch (e) {
      if (e.status === 401) return;
      table.message(notAvailable(e) ? "Logs are not available" : "Search failed", e.detail || e.message);
      count.textContent = "";
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search = input.value.trim();
    offset = 0;
    history.replaceState(null, "", search ? `#/logs?q=${encodeURIComponent(search)}` : "#/logs");
    load();
  });
  tail.addEventListener("change", live);
  load();
  return () => close();
}
