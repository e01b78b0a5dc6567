// One attacker: the profile header (address, counters, traversal path) and tabs for its
// timeline of events, captured credentials, commands and captured files (downloaded with
// the token; the API serves them as attachments).
import { h, mount, panel, empty, toast } from "../dom.js";
import { api, rows, download, notAvailable } from "../api.js";
import { num, time, ago, list, fieldsOf } from "../format.js";
import { dataTable } from "../table.js";
import { LOG_COLUMNS, logDetail } from "./logs.js";
import { CREDENTIAL_COLUMNS } from "./credentials.js";
import { chips } from "./attackers.js";

function fact(label, value) {
  return h("div", {}, h("b", { text: value }), h("span", { text: label }));
}

function unavailable(e, what) {
  return empty(notAvailable(e) ? `${what} are not available on this master yet` : `Could not load ${what.toLowerCase()}`, notAvailable(e) ? "" : e.detail || "");
}

function timeline(box, a) {
  api("/logs", { query: { search: `attacker:${a.ip}`, limit: 200 } }).then((p) => {
    const t = dataTable({ columns: LOG_COLUMNS.filter((c) => c.label !== "Attacker"), expand: logDetail, emptyTitle: "No events stored for this address" });
    t.set(rows(p));
    mount(box, t.el);
  }).catch((e) => mount(box, unavailable(e, "Events")));
}

function credentials(box, a) {
  api("/credentials", { query: { search: a.ip, limit: 200 } }).then((p) => {
    const t = dataTable({ columns: CREDENTIAL_COLUMNS.filter((c) => c.label !== "Attacker"), emptyTitle: "No credentials captured from this address" });
    t.set(rows(p).filter((c) => !c.attacker_ip || c.attacker_ip === a.ip));
    mount(box, t.el);
  }).catch((e) => mount(box, unavailable(e, "Credentials")));
}

function commands(box, a) {
  const show = (cmds) => {
    const t = dataTable({
      columns: [
        { label: "Time", width: "172px", get: (c) => h("span", { class: "mono", text: time(c.timestamp) }) },
        { label: "Decky", width: "130px", get: (c) => c.decky || "" },
        { label: "Service", width: "90px", get: (c) => h("span", { class: "chip", text: c.service || "?" }) },
        { label: "Command", get: (c) => h("span", { class: "mono", text: c.command || "" }) },
      ],
      emptyTitle: "No commands recorded",
    });
    t.set(cmds);
    mount(box, t.el);
  };
  if (Array.isArray(a.commands)) { show(a.commands); return; }
  api(`/attackers/${encodeURIComponent(a.uuid)}/commands`).then((p) => show(rows(p)))
    .catch((e) => mount(box, unavailable(e, "Commands")));
}

function artifacts(box, a) {
  api(`/attackers/${encodeURIComponent(a.uuid)}/artifacts`).then((p) => {
    const t = dataTable({
      columns: [
        { label: "Time", width: "172px", get: (r) => h("span", { class: "mono", text: time(r.timestamp) }) },
        { label: "Decky", width: "120px", get: (r) => r.decky || "" },
        { label: "Service", width: "80px", get: (r) => h("span", { class: "chip", text: r.service || "?" }) },
        { label: "File", get: (r) => h("span", { class: "mono", text: fieldsOf(r).orig_path || fieldsOf(r).stored_as || "" }) },
        { label: "Size", width: "90px", cls: "num", get: (r) => num(Number(fieldsOf(r).size)) },
        { label: "SHA-256", width: "140px", get: (r) => h("span", { class: "mono", text: String(fieldsOf(r).sha256 || "").slice(0, 16) }) },
        { label: "", width: "110px", get: (r) => {
          const f = fieldsOf(r);
          if (!f.stored_as) return "";
          return h("button", { type: "button", on: { click: (e) => {
            e.stopPropagation();
            download(`/artifacts/${encodeURIComponent(r.decky)}/${encodeURIComponent(f.stored_as)}`, { service: r.service }, String(f.stored_as))
              .catch((ex) => toast(ex.detail || "Download failed", "bad"));
          } } }, "Download");
        } },
      ],
      emptyTitle: "No files captured from this address",
    });
    t.set(rows(p));
    mount(box, t.el);
  }).catch((e) => mount(box, unavailable(e, "Artifacts")));
}

const TABS = [["Timeline", timeline], ["Credentials", credentials], ["Commands", commands], ["Artifacts", artifacts]];

/** The attacker detail page for `uuid`. */
export function render(page, ctx, uuid) {
  ctx.setTitle("Attacker", "loading…");
  mount(page, h("div", { class: "panel" }, empty("Loading…")));
  api(`/attackers/${encodeURIComponent(uuid)}`).then((a) => {
    ctx.setTitle("Attacker", a.ip);
    const deckies = list(a.deckies);
    const path = h("div", { class: "path" }, deckies.map((d, i) => [i ? h("span", { class: "arrow", text: "→" }) : null, h("span", { class: "chip info", text: String(d) })]));
    const hero = h("section", { class: "panel" },
      h("div", { class: "hero" },
        h("div", {}, h("div", { class: "ip", id: "attacker-ip", text: a.ip }),
          h("div", { class: "muted" }, `first seen ${time(a.first_seen)} · last seen ${ago(a.last_seen)}`)),
        h("div", { class: "facts" },
          fact("events", num(a.event_count)), fact("services", num(list(a.services).length)),
          fact("deckies", num(deckies.length)), fact("credentials", num(a.credential_count)), fact("bounty", num(a.bounty_count)))),
      h("div", { class: "body" },
        h("dl", { class: "kv" },
          h("dt", { text: "Services" }), h("dd", {}, chips(a.services, 20)),
          h("dt", { text: a.is_traversal ? "Traversal" : "Deckies" }), h("dd", {}, path))));
    const tabBar = h("div", { class: "tabs", role: "tablist" });
    const box = h("div", {});
    const select = (i) => {
      [...tabBar.children].forEach((b, j) => b.setAttribute("aria-selected", String(i === j)));
      mount(box, empty("Loading…"));
      TABS[i][1](box, a);
    };
    TABS.forEach(([label], i) => tabBar.append(h("button", { type: "button", role: "tab", "aria-selected": "false", on: { click: () => select(i) } }, label)));
    mount(page, h("div", {}, h("a", { href: "#/attackers" }, "← Attackers")), hero, h("section", { class: "panel" }, tabBar, box));
    select(0);
  }).catch((e) => {
    if (e.status === 401) return;
    mount(page, panel("Attacker", null, empty(e.status === 404 ? "No such attacker, or profiles are not available yet" : "Could not load the attacker", notAvailable(e) ? "" : e.detail || "")));
  });
}
