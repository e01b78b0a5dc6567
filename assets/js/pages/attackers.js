// Attackers: one row per source address from the profiler, sortable (recent, most
// active, traversals), filtered by address and service; a row opens the detail page.
import { h, mount, panel } from "../dom.js";
import { num, ago, list } from "../format.js";
import { pagedList, searchBar } from "../table.js";

/** Up to `cap` chips for a list (or JSON text of one), then "+n". */
export function chips(values, cap = 4) {
  const v = list(values);
  return h("span", { class: "chips" }, v.slice(0, cap).map((s) => h("span", { class: "chip", text: String(s) })),
    v.length > cap ? h("span", { class: "chip", text: `+${v.length - cap}` }) : null);
}

/** The attackers page. */
export function render(page, ctx) {
  ctx.setTitle("Attackers");
  const input = h("input", { id: "attacker-search", placeholder: "IP address contains…", "aria-label": "Search attackers by IP" });
  const sort = h("select", { id: "attacker-sort", "aria-label": "Sort by" },
    h("option", { value: "recent" }, "Most recent"), h("option", { value: "active" }, "Most active"), h("option", { value: "traversals" }, "Traversals"));
  const service = h("input", { type: "text", id: "attacker-service", placeholder: "service", "aria-label": "Filter by service", size: "10" });
  const table = pagedList({
    path: "/attackers", noun: "attackers", what: "Attacker profiles are",
    query: () => ({ search: input.value.trim(), sort_by: sort.value, service: service.value.trim() }),
    columns: [
      { label: "Address", width: "150px", get: (a) => h("span", { class: "mono", text: a.ip }) },
      { label: "Last seen", width: "110px", get: (a) => ago(a.last_seen) },
      { label: "First seen", width: "110px", get: (a) => ago(a.first_seen) },
      { label: "Events", width: "80px", cls: "num", get: (a) => num(a.event_count) },
      { label: "Services", get: (a) => chips(a.services) },
      { label: "Deckies", get: (a) => (a.is_traversal ? h("span", { class: "chip warn", text: a.traversal_path || "traversal" }) : chips(a.deckies, 3)) },
      { label: "Creds", width: "80px", cls: "num", get: (a) => num(a.credential_count) },
      { label: "Bounty", width: "84px", cls: "num", get: (a) => num(a.bounty_count) },
    ],
    onRow: (a) => ctx.go(`/attackers/${encodeURIComponent(a.uuid)}`),
    emptyTitle: "No attackers yet", emptyText: "The profiler builds one row per source address from the stored events.",
  });
  sort.addEventListener("change", () => table.load(true));
  mount(page, searchBar(input, [service, sort], "Filter", () => table.load(true)),
    panel("Attackers", table.count, table.table.el, table.pager.el));
  table.load(true);
}
