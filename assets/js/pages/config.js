// Users and configuration: the deployment limit and the global mutation interval, the
// health of the master's components, and (admins) account administration: create,
// change role, reset password, delete.
import { h, mount, panel, empty, toast, confirmDialog, promptDialog } from "../dom.js";
import { api } from "../api.js";
import { dataTable } from "../table.js";

function setting(title, label, value, admin, save) {
  const input = h("input", { type: "text", value: String(value ?? ""), "aria-label": label, disabled: !admin });
  const button = h("button", { type: "submit", class: "primary", disabled: !admin }, "Save");
  const form = h("form", { class: "form-row" }, h("label", { class: "field" }, label, input), button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { const r = await save(input.value.trim()); toast((r && r.message) || "Saved", "ok"); } catch (ex) { toast(ex.detail || ex.message, "bad"); }
  });
  return panel(title, admin ? null : h("span", { class: "chip", text: "admin only" }), h("div", { class: "body" }, form));
}

function healthPanel() {
  const box = h("div", { class: "body" }, h("span", { class: "muted", text: "Checking…" }));
  const overall = h("span", { class: "chip" });
  api("/health").then(show).catch((e) => {
    // Unhealthy is a 503 with the same body as a 200.
    if (e.body && e.body.components) show(e.body);
    else mount(box, empty("Health unavailable", e.detail || ""));
  });
  function show(r) {
    overall.textContent = r.status;
    overall.className = `chip ${r.status === "healthy" ? "ok" : r.status === "degraded" ? "warn" : "bad"}`;
    const comps = Object.entries(r.components || {});
    mount(box, h("dl", { class: "kv" }, comps.map(([k, v]) => [
      h("dt", { class: "mono", text: k }),
      h("dd", {}, h("span", { class: ["chip", v.status === "ok" ? "ok" : "bad"], text: v.status }), " ", h("span", { class: "muted", text: v.detail || "" })),
    ])));
  }
  return panel("Health", overall, box);
}

function usersPanel(users, reload) {
  const table = dataTable({
    columns: [
      { label: "Username", get: (u) => h("b", { text: u.username }) },
      { label: "Role", width: "140px", get: (u) => {
        const s = h("select", { "aria-label": `Role of ${u.username}` }, ["admin", "viewer"].map((r) => h("option", { value: r, selected: u.role === r }, r)));
        s.addEventListener("change", async () => {
          try { await api(`/config/users/${encodeURIComponent(u.uuid)}/role`, { method: "PUT", body: { role: s.value } }); toast("Role changed", "ok"); } catch (e) { toast(e.detail || e.message, "bad"); s.value = u.role; }
        });
        return s;
      } },
      { label: "Status", width: "160px", get: (u) => h("span", { class: ["chip", u.must_change_password ? "warn" : "ok"], text: u.must_change_password ? "must change password" : "active" }) },
      { label: "", width: "230px", get: (u) => h("span", { class: "row-actions" },
        h("button", { type: "button", on: { click: async () => {
          const p = await promptDialog(`Reset password of ${u.username}`, "Temporary password (12–72 bytes)", { type: "password", ok: "Reset" });
          if (p === null) return;
          try { await api(`/config/users/${encodeURIComponent(u.uuid)}/reset-password`, { method: "PUT", body: { new_password: p } }); toast("Password reset; it must be changed at next login", "ok"); reload(); } catch (e) { toast(e.detail || e.message, "bad"); }
        } } }, "Reset password"),
        h("button", { type: "button", class: "danger", on: { click: async () => {
          if (!(await confirmDialog(`Delete ${u.username}?`, "The account and its sessions are removed.", { danger: true, ok: "Delete" }))) return;
          try { await api(`/config/users/${encodeURIComponent(u.uuid)}`, { method: "DELETE" }); toast("User deleted", "ok"); reload(); } catch (e) { toast(e.detail || e.message, "bad"); }
        } } }, "Delete")) },
    ],
    emptyTitle: "No users",
  });
  table.set(users);
  const name = h("input", { type: "text", id: "new-username", placeholder: "username", "aria-label": "New username", autocomplete: "off" });
  const pass = h("input", { type: "password", id: "new-user-password", placeholder: "temporary password", "aria-label": "Temporary password", autocomplete: "new-password" });
  const role = h("select", { id: "new-user-role", "aria-label": "Role" }, h("option", { value: "viewer" }, "viewer"), h("option", { value: "admin" }, "admin"));
  const form = h("form", { class: "form-row body" }, name, pass, role, h("button", { type: "submit", class: "primary" }, "Add user"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/config/users", { method: "POST", body: { username: name.value.trim(), password: pass.value, role: role.value } });
      toast(`User ${name.value.trim()} created`, "ok");
      reload();
    } catch (ex) { toast(ex.detail || ex.message, "bad"); }
  });
  return panel("Users", h("span", { class: "muted num", text: `${users.length} accounts` }), table.el, form);
}

/** The users and config page. */
export function render(page, ctx) {
  ctx.setTitle("Users & config");
  async function load() {
    let c;
    try { c = await api("/config"); } catch (e) { if (e.status !== 401) mount(page, panel("Config", null, empty("Could not load the configuration", e.detail || ""))); return; }
    const admin = c.role === "admin";
    mount(page,
      h("div", { class: "settings" },
        setting("Deployment limit", "Most deckies per deployment (1–500)", c.deployment_limit, admin,
          (v) => api("/config/deployment-limit", { method: "PUT", body: { deployment_limit: Number(v) } })),
        setting("Global mutation interval", "Interval (e.g. 30m, 2d, 1M)", c.global_mutation_interval, admin,
          (v) => api("/config/global-mutation-interval", { method: "PUT", body: { global_mutation_interval: v } })),
        healthPanel()),
      admin && Array.isArray(c.users) ? usersPanel(c.users, load) : panel("Users", null, empty("Account administration is for admins")),
      h("div", { class: "hint" }, `Signed in as ${ctx.username || "?"} (${c.role})${c.developer_mode ? " · developer mode" : ""}.`));
  }
  load();
}
