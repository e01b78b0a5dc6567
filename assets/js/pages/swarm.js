// Swarm: the enrolled worker hosts (state, last heartbeat, version, deckies on each),
// enrolment in one line (the `curl … | sudo sh` command, shown and copyable while its
// token lives), host teardown and decommission with confirmation.
import { h, mount, panel, empty, toast, confirmDialog } from "../dom.js";
import { api, rows, notAvailable } from "../api.js";
import { stateClass, ago, time } from "../format.js";

const POLL_MS = 5000;
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

function hostState(s) {
  const v = String(s || "").toLowerCase();
  if (v === "active") return "ok";
  if (v === "unreachable") return "bad";
  if (v === "enrolled") return "info";
  return stateClass(v);
}

function hostRow(host, deckies, admin, reload) {
  const mine = deckies.filter((d) => d.host_uuid === host.uuid);
  const running = mine.filter((d) => d.state === "running").length;
  const name = String(host.name || "");
  const act = async (what, fn) => {
    try { await fn(); toast(`${what}: ${name}`, "ok"); reload(); } catch (e) { toast(`${what} failed: ${e.detail || e.message}`, "bad"); }
  };
  const path = `/swarm/hosts/${encodeURIComponent(host.uuid)}`;
  return h("tr", { dataset: { host: name } },
    h("td", { class: "mono", text: name }),
    h("td", { class: "mono", text: host.address ? `${host.address}:${host.agent_port}` : "waiting for the bundle download" }),
    h("td", {}, h("span", { class: ["chip", hostState(host.status)], text: String(host.status || "?") })),
    h("td", { text: host.last_heartbeat ? ago(host.last_heartbeat) : "never", title: host.last_heartbeat ? time(host.last_heartbeat) : "" }),
    h("td", { class: "mono", text: host.agent_version || "—" }),
    h("td", { class: "num", text: `${running}/${mine.length}`, title: mine.map((d) => `${d.decky_name} (${d.state})`).join(", ") }),
    h("td", { class: "mono muted", text: String(host.client_cert_fingerprint || "").slice(0, 16), title: String(host.client_cert_fingerprint || "") }),
    admin ? h("td", { class: "host-actions" },
      h("button", { type: "button", disabled: mine.length === 0, on: { click: async () => {
        if (await confirmDialog(`Tear down every decky on ${name}?`, `${mine.length} decky(ies) are removed from this worker; it stays enrolled.`, { danger: true, ok: "Tear down" })) {
          act("Teardown queued", () => api(`${path}/teardown`, { method: "POST", body: { decky_id: null } }));
        }
      } } }, "Teardown"),
      h("button", { type: "button", class: "danger", dataset: { decommission: name }, on: { click: async () => {
        if (await confirmDialog(`Decommission ${name}?`, "The worker removes decnet from itself, its deckies are forgotten and its certificate is refused from now on.", { danger: true, ok: "Decommission" })) {
          act("Decommissioned", () => api(path, { method: "DELETE" }));
        }
      } } }, "Decommission")) : null);
}

function enrolPanel(reload) {
  const name = h("input", { type: "text", id: "enrol-name", placeholder: "worker-1", "aria-label": "Worker name", autocomplete: "off" });
  const master = h("input", { type: "text", id: "enrol-master", value: location.hostname, "aria-label": "Master address the worker reaches", autocomplete: "off" });
  const updater = h("input", { type: "checkbox", id: "enrol-updater" });
  const out = h("div", { class: "enrol-result", id: "enrol-result" });
  const button = h("button", { type: "button", class: "primary", id: "enrol-submit" }, "Create one-liner");
  button.addEventListener("click", async () => {
    const n = name.value.trim();
    if (!NAME.test(n)) { mount(out, h("div", { class: "error", text: "A worker name is 1–63 lower-case letters, digits and '-', starting with a letter or digit." })); return; }
    button.disabled = true;
    try {
      const r = await api("/swarm/enroll-bundle", { method: "POST", body: { agent_name: n, master_host: master.value.trim(), with_updater: updater.checked } });
      const cmd = h("input", { type: "text", class: "mono", id: "enrol-command", readonly: "readonly", value: r.command, "aria-label": "Enrolment command" });
      const copy = h("button", { type: "button", id: "enrol-copy", on: { click: async () => {
        cmd.select();
        try { await navigator.clipboard.writeText(r.command); toast("Command copied", "ok"); } catch { toast("Select the command and copy it", ""); }
      } } }, "Copy");
      mount(out, h("p", { class: "muted", text: `Run this as root on the new worker before ${time(r.expires_at)}; it works once.` }),
        h("div", { class: "form-row" }, cmd, copy));
      reload();
    } catch (e) {
      mount(out, h("div", { class: "error", text: notAvailable(e) ? "Enrolment is not available on this master." : e.detail || e.message }));
    } finally {
      button.disabled = false;
    }
  });
  return panel("Enrol a worker", null, h("div", { class: "body" },
    h("div", { class: "form-row" }, h("label", {}, "Name ", name), h("label", {}, "Master address ", master),
      h("label", { class: "check" }, updater, "With updater"), h("span", { class: "spacer" }), button),
    out));
}

/** The swarm page. */
export function render(page, ctx) {
  ctx.setTitle("Swarm");
  const admin = ctx.role === "admin";
  const body = h("tbody", { id: "swarm-hosts" });
  const count = h("span", { class: "muted num", id: "swarm-count" });
  const box = h("div", {});
  let timer = null;
  async function load() {
    clearTimeout(timer);
    try {
      const [hosts, deckies] = await Promise.all([api("/swarm/hosts"), api("/swarm/deckies")]);
      const list = rows(hosts);
      const all = rows(deckies);
      count.textContent = `${list.length} worker(s), ${all.length} decky(ies)`;
      if (!list.length) mount(box, h("div", { class: "panel" }, empty("No worker enrolled", admin ? "Create a one-liner below and run it on the new worker." : "An admin can enrol workers.")));
      else {
        mount(body, list.map((x) => hostRow(x, all, admin, load)));
        const cols = [null, null, "110px", null, "90px", "80px", null, admin ? "250px" : null].filter((w, i) => admin || i < 7);
        mount(box, h("div", { class: "table-wrap" }, h("table", { class: "swarm" },
          h("colgroup", {}, cols.map((w) => { const c = h("col"); if (w) c.style.width = w; return c; })),
          h("thead", {}, h("tr", {}, ["Host", "Agent", "State", "Last heartbeat", "Version", "Deckies", "Pin", admin ? "" : null].filter((x) => x !== null).map((t) => h("th", { text: t })))),
          body)));
      }
    } catch (e) {
      if (e.status === 401) return;
      mount(box, h("div", { class: "panel" }, empty(notAvailable(e) ? "The swarm is not available on this master" : "Could not load the swarm", notAvailable(e) ? "" : e.detail || "")));
    }
    timer = setTimeout(load, POLL_MS);
  }
  mount(page, h("div", { class: "toolbar" }, h("h2", { class: "sr-only", text: "Worker hosts" }), count, h("span", { class: "spacer grow" }),
    h("button", { type: "button", on: { click: () => load() } }, "Refresh")), box, admin ? enrolPanel(() => load()) : null);
  load();
  return () => clearTimeout(timer);
}
