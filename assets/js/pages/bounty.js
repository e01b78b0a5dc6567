// Bounty: fingerprints, user agents, captured files and mail extracted from the events,
// filtered by type and text; a row opens its decoded payload.
import { h, mount, panel } from "../dom.js";
import { time, pretty } from "../format.js";
import { pagedList, searchBar } from "../table.js";

const TYPES = ["", "fingerprint", "artifact", "ip_leak", "credential"];

function summary(p) {
  if (p && typeof p === "object") return String(p.value ?? p.stored_as ?? p.subject ?? JSON.stringify(p));
  return String(p ?? "");
}

/** The bounty page. */
export function render(page, ctx) {
  ctx.setTitle("Bounty");
  const input = h("input", { id: "bounty-search", placeholder: "decky, service, address or payload text", "aria-label": "Search bounty" });
  const type = h("select", { id: "bounty-type", "aria-label": "Bounty type" }, TYPES.map((t) => h("option", { value: t }, t || "All types")));
  const list = pagedList({
    path: "/bounty", query: () => ({ search: input.value.trim(), bounty_type: type.value }),
    noun: "items", what: "Bounty is",
    columns: [
      { label: "Time", width: "172px", get: (b) => h("span", { class: "mono", text: time(b.timestamp) }) },
      { label: "Type", width: "110px", get: (b) => h("span", { class: "chip info", text: b.bounty_type || "" }) },
      { label: "Attacker", width: "130px", get: (b) => h("span", { class: "mono", text: b.attacker_ip || "" }) },
      { label: "Decky", width: "120px", get: (b) => b.decky || "" },
      { label: "Service", width: "80px", get: (b) => h("span", { class: "chip", text: b.service || "?" }) },
      { label: "Payload", get: (b) => h("span", { class: "mono", text: summary(b.payload) }) },
    ],
    expand: (b) => h("pre", { class: "json", text: pretty(b.payload) }),
    emptyTitle: "No bounty yet", emptyText: "Fingerprints, user agents, captured files and mail collect here.",
  });
  type.addEventListener("change", () => list.load(true));
  mount(page, searchBar(input, type, "Search", () => list.load(true)),
    panel("Bounty vault", list.count, list.table.el, list.pager.el));
  list.load(true);
}
