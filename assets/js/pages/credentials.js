// Credentials: every captured secret with its principal, outcome and attempt count. The
// printable form is shown as text; secrets with bytes that do not print stay base64.
import { h, mount, panel } from "../dom.js";
import { num, ago } from "../format.js";
import { pagedList, searchBar } from "../table.js";

/** Columns of a credential row. */
export const CREDENTIAL_COLUMNS = [
  { label: "Last seen", width: "100px", get: (c) => ago(c.last_seen) },
  { label: "Attacker", width: "140px", get: (c) => h("span", { class: "mono", text: c.attacker_ip || "" }) },
  { label: "Decky", width: "120px", get: (c) => c.decky_name || "" },
  { label: "Service", width: "80px", get: (c) => h("span", { class: "chip", text: c.service || "?" }) },
  { label: "Principal", width: "150px", get: (c) => h("span", { class: "mono", text: c.principal || "" }) },
  { label: "Secret", get: (c) => h("span", { class: "mono", title: c.secret_kind || "", text: c.secret_printable ?? `base64:${c.secret_b64 || ""}` }) },
  { label: "Kind", width: "90px", get: (c) => c.secret_kind || "" },
  { label: "Outcome", width: "90px", get: (c) => h("span", { class: ["chip", c.outcome === "success" ? "bad" : ""], text: c.outcome || "—" }) },
  { label: "Tries", width: "64px", cls: "num", get: (c) => num(c.attempt_count) },
];

/** The credentials page. */
export function render(page, ctx) {
  ctx.setTitle("Credentials");
  const input = h("input", { id: "credential-search", placeholder: "attacker, principal, decky…", "aria-label": "Search credentials" });
  const list = pagedList({
    path: "/credentials", query: () => ({ search: input.value.trim() }), columns: CREDENTIAL_COLUMNS,
    noun: "credentials", what: "Credentials are",
    emptyTitle: "No credentials captured yet", emptyText: "Login attempts on ssh, http, ftp, databases and mail land here.",
  });
  mount(page, searchBar(input, null, "Search", () => list.load(true)),
    panel("Captured credentials", list.count, list.table.el, list.pager.el));
  list.load(true);
}
