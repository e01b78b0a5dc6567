// Fleet: one card per decky (state, address, persona, services) with mutate, teardown
// and the mutation interval, and deployment from an INI file with lifecycle polling
// until every job has finished.
import { h, mount, panel, empty, toast, confirmDialog } from "../dom.js";
import { api, rows, qs, notAvailable } from "../api.js";
import { stateClass, ago } from "../format.js";
import { chips } from "./attackers.js";

const POLL_MS = 2000;
const SAMPLE = "# One section per decky; amount= makes several.\n[general]\nnet = 198.51.100.0/24\n\n[web]\nservices = http, ssh\namount = 2\n";
/** Lifecycle states after which a job changes no more (running is not one). */
const DONE = ["succeeded", "success", "done", "completed", "failed", "error"];

function meta(label, value) {
  return h("div", {}, h("span", { text: label }), h("b", { text: value === undefined || value === null || value === "" ? "—" : String(value) }));
}

function deckyCard(d, admin, reload) {
  const name = String(d.name || "");
  const state = d.state || d.status || "unknown";
  const interval = h("input", { type: "text", value: d.mutate_interval ?? "", placeholder: "30m", "aria-label": `Mutation interval of ${name}` });
  const act = async (what, fn) => {
    try { await fn(); toast(`${what}: ${name}`, "ok"); reload(); } catch (e) { toast(`${what} failed: ${e.detail || e.message}`, "bad"); }
  };
  const path = `/deckies/${encodeURIComponent(name)}`;
  return h("article", { class: "panel decky", dataset: { decky: name } },
    h("header", {}, h("h3", { text: name, title: name }), h("span", { class: ["chip", stateClass(state)], text: String(state) })),
    h("div", { class: "meta" },
      meta("Address", d.ip), meta("Distro", d.distro), meta("Archetype", d.archetype),
      meta("Host", d.swarm_host || d.host || "local"), meta("Hostname", d.hostname), meta("Last seen", d.last_seen ? ago(d.last_seen) : "")),
    chips(d.services, 8),
    admin ? h("div", { class: "actions" },
      h("button", { type: "button", on: { click: () => act("Mutation queued", () => api(`${path}/mutate`, { method: "POST" })) } }, "Mutate"),
      interval,
      h("button", { type: "button", title: "Set the mutation interval (empty: the global one)", on: { click: () => act("Interval saved", () => api(`${path}/mutate-interval`, { method: "PUT", body: { mutate_interval: interval.value.trim() || null } })) } }, "Set"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "danger", on: { click: async () => {
        if (await confirmDialog(`Tear down ${name}?`, "Its containers are removed; captured evidence stays.", { danger: true, ok: "Tear down" })) {
          act("Torn down", () => api(path, { method: "DELETE" }));
        }
      } } }, "Teardown")) : null);
}

function deployPanel(reload) {
  const ini = h("textarea", { id: "deploy-ini", rows: "9", spellcheck: "false", "aria-label": "Fleet INI" });
  ini.value = SAMPLE;
  const replace = h("input", { type: "checkbox", id: "deploy-replace" });
  const status = h("div", { class: "lifecycle", id: "deploy-status" });
  const button = h("button", { type: "button", class: "primary", id: "deploy-submit" }, "Deploy");
  let timer = null;
  async function poll(ids) {
    try {
      const list = rows(await api(`/deckies/lifecycle${qs({ ids: ids.join(",") })}`));
      mount(status, list.map((j) => h("div", { class: "toolbar" },
        h("span", { class: ["chip", stateClass(j.status || j.state)], text: String(j.status || j.state || "?") }),
        h("span", { class: "mono", text: String(j.decky_name || j.name || j.decky || j.id || "") }),
        h("span", { class: "muted", text: String(j.operation || "") }),
        h("span", { class: "muted", text: String(j.error || j.last_error || j.detail || j.message || "") }))));
      const finished = list.length > 0 && list.every((j) => DONE.includes(String(j.status || j.state || "").toLowerCase()));
      if (finished) { reload(); return; }
    } catch (e) {
      if (!notAvailable(e)) mount(status, h("div", { class: "error", text: e.detail || e.message }));
      return;
    }
    timer = setTimeout(() => poll(ids), POLL_MS);
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    mount(status, h("span", { class: "muted", text: "Submitting…" }));
    try {
      const r = await api("/deckies/deploy", { method: "POST", body: { ini_content: ini.value, replace_fleet: replace.checked } });
      const ids = (r && r.lifecycle_ids) || [];
      mount(status, h("span", { class: "muted", text: `${ids.length} job(s) queued` }));
      if (ids.length) poll(ids);
    } catch (e) {
      mount(status, h("div", { class: "error", text: notAvailable(e) ? "Deployment is not available on this master yet." : e.detail || e.message }));
    } finally {
      button.disabled = false;
    }
  });
  return {
    el: panel("Deploy from INI", null, h("div", { class: "body" }, ini,
      h("div", { class: "form-row" }, h("label", { class: "check" }, replace, "Replace the whole fleet"), h("span", { class: "spacer" }), button),
      status)),
    stop: () => clearTimeout(timer),
  };
}

/** The fleet page. */
export function render(page, ctx) {
  ctx.setTitle("Fleet");
  const admin = ctx.role === "admin";
  const cards = h("div", { class: "cards", id: "decky-cards" });
  const mode = h("span", { class: "chip", id: "deployment-mode", text: "…" });
  const count = h("span", { class: "muted num" });
  const deploy = admin ? deployPanel(() => load()) : null;
  async function load() {
    try {
      const list = rows(await api("/deckies"));
      count.textContent = `${list.length} deckies`;
      if (!list.length) mount(cards, h("div", { class: "panel" }, empty("No deckies deployed", admin ? "Deploy a fleet from an INI file below." : "An admin can deploy a fleet.")));
      else mount(cards, list.map((d) => deckyCard(d, admin, load)));
    } catch (e) {
      if (e.status === 401) return;
      mount(cards, h("div", { class: "panel" }, empty(notAvailable(e) ? "Fleet management is not available on this master yet" : "Could not load the fleet", notAvailable(e) ? "" : e.detail || "")));
    }
  }
  api("/system/deployment-mode").then((m) => {
    mode.textContent = `${m.mode || "unihost"} · ${m.role || "master"}${m.swarm_host_count ? ` · ${m.swarm_host_count} hosts` : ""}`;
  }).catch(() => { mode.textContent = "unihost"; });
  mount(page, h("div", { class: "toolbar" }, h("h2", { class: "sr-only", text: "Deckies" }), mode, count, h("span", { class: "spacer grow" }),
    h("button", { type: "button", on: { click: () => load() } }, "Refresh")), cards, deploy ? deploy.el : null);
  load();
  return () => deploy && deploy.stop();
}
