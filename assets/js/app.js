// The application shell: hash routing, the sidebar, theme toggle, keyboard shortcuts and
// the session (token in localStorage; any 401 returns to the login page).
import { h, mount } from "./dom.js";
import { api, token, setToken, setUnauthorizedHandler } from "./api.js";
import * as login from "./pages/login.js";
import * as overview from "./pages/overview.js";
import * as logs from "./pages/logs.js";
import * as attackers from "./pages/attackers.js";
import * as attacker from "./pages/attacker.js";
import * as credentials from "./pages/credentials.js";
import * as bounty from "./pages/bounty.js";
import * as fleet from "./pages/fleet.js";
import * as swarm from "./pages/swarm.js";
import * as config from "./pages/config.js";

/** Sidebar entries: route, label, page module, `g` shortcut key, section. */
const NAV = [
  { path: "/", label: "Overview", page: overview, key: "o", section: "" },
  { path: "/logs", label: "Live logs", page: logs, key: "l", section: "Alerts" },
  { path: "/attackers", label: "Attackers", page: attackers, key: "a", section: "Threat data" },
  { path: "/credentials", label: "Credentials", page: credentials, key: "c", section: "Threat data" },
  { path: "/bounty", label: "Bounty", page: bounty, key: "b", section: "Threat data" },
  { path: "/fleet", label: "Fleet", page: fleet, key: "f", section: "Deploy" },
  { path: "/swarm", label: "Swarm", page: swarm, key: "s", section: "Deploy" },
  { path: "/config", label: "Users & config", page: config, key: "u", section: "System" },
];

const root = document.getElementById("app");
/** What every page gets: the session's role and name, and the theme switch. */
const ctx = { role: null, username: null, setTitle: () => {} };
let cleanup = null;

function currentPath() {
  const p = location.hash.replace(/^#/, "") || "/";
  return p.startsWith("/") ? p : `/${p}`;
}

/** Navigates to a route of the page. */
export function go(path) {
  if (currentPath() === path) render();
  else location.hash = `#${path}`;
}
ctx.go = go;

function setTheme(t) {
  document.documentElement.dataset.theme = t;
  try { localStorage.setItem("theme", t); } catch { /* private mode */ }
}
function toggleTheme() {
  setTheme(document.documentElement.dataset.theme === "light" ? "dark" : "light");
}

async function loadSession() {
  if (ctx.role) return true;
  try {
    const c = await api("/config");
    ctx.role = c.role;
    ctx.config = c;
    return true;
  } catch (e) {
    if (e.status === 403) {
      // Must change the password first: the login page handles it.
      setToken(null);
    }
    return false;
  }
}

async function logout() {
  try { await api("/auth/logout", { method: "POST" }); } catch { /* already invalid */ }
  setToken(null);
  ctx.role = null;
  go("/login");
}

function shell(active) {
  const title = h("h1", { id: "page-title" });
  const crumb = h("span", { class: "crumb" });
  ctx.setTitle = (t, sub) => { title.textContent = t; crumb.textContent = sub || ""; document.title = `${t} · decnet`; };
  const nav = h("nav", { class: "nav", "aria-label": "Main" });
  let section = null;
  for (const n of NAV) {
    if (n.section !== section) {
      section = n.section;
      if (section) nav.append(h("h6", { text: section }));
    }
    const on = n.path === "/" ? active === "/" : active.startsWith(n.path);
    nav.append(h("a", { href: `#${n.path}`, class: on ? "active" : "", "aria-current": on ? "page" : null, dataset: { nav: n.path } },
      h("span", { class: "dot" }), n.label, h("kbd", { text: `g ${n.key}` })));
  }
  const themeBtn = h("button", { type: "button", class: "ghost icon", id: "theme-toggle", title: "Toggle theme (t)", "aria-label": "Toggle dark/light theme", on: { click: toggleTheme } }, "◐");
  const side = h("aside", { class: "side" },
    h("div", { class: "brand" }, h("img", { src: "/favicon.svg", alt: "" }), "decnet", h("small", { text: "deception" })),
    nav,
    h("div", { class: "side-foot" },
      h("div", { class: "who" }, h("b", { text: ctx.username || "signed in" }), h("span", { text: ctx.role || "" })),
      themeBtn,
      h("button", { type: "button", class: "ghost", id: "logout", on: { click: logout } }, "Sign out")));
  const main = h("div", { class: "main" },
    h("div", { class: "top" }, title, crumb, h("span", { class: "spacer" }),
      h("button", { type: "button", class: "ghost", title: "Keyboard shortcuts (?)", on: { click: showHelp } }, h("kbd", { text: "?" }), "Shortcuts")),
    h("main", { class: "page", id: "page" }));
  mount(root, h("div", { class: "shell" }, side, main));
  return main.querySelector("#page");
}

function showHelp() {
  const d = h("dialog", { "aria-label": "Keyboard shortcuts" });
  const rows = [["/", "Focus search"], ["t", "Toggle theme"], ["?", "This help"], ["Esc", "Close dialog"],
    ...NAV.map((n) => [`g ${n.key}`, n.label])];
  d.append(h("div", { class: "body" }, h("h3", { text: "Keyboard shortcuts" }),
    h("div", { class: "help-list" }, rows.map(([k, v]) => [h("kbd", { text: k }), h("span", { text: v })]))),
  h("footer", {}, h("button", { type: "button", class: "primary", on: { click: () => { d.close(); d.remove(); } } }, "Close")));
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  const path = currentPath().split("?")[0];
  root.classList.remove("boot");
  if (path === "/login" || !token()) {
    ctx.role = null;
    cleanup = login.render(root, ctx) || null;
    return;
  }
  if (!(await loadSession())) { go("/login"); return; }
  const m = path.match(/^\/attackers\/([^/]+)$/);
  const entry = m ? { page: attacker, path: "/attackers" } : NAV.find((n) => n.path === path) || NAV[0];
  const page = shell(path);
  cleanup = entry.page.render(page, ctx, m ? decodeURIComponent(m[1]) : undefined) || null;
}

let pendingG = 0;
document.addEventListener("keydown", (e) => {
  const t = e.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  if (typing || e.ctrlKey || e.metaKey || e.altKey || document.querySelector("dialog[open]")) return;
  if (!token() || currentPath() === "/login") return;
  if (e.key === "/") {
    const s = document.querySelector("[data-search]");
    if (s) { e.preventDefault(); s.focus(); s.select(); }
  } else if (e.key === "t") toggleTheme();
  else if (e.key === "?") showHelp();
  else if (e.key === "g") pendingG = Date.now();
  else if (Date.now() - pendingG < 1200) {
    const n = NAV.find((x) => x.key === e.key);
    pendingG = 0;
    if (n) go(n.path);
  }
});

ctx.signedIn = (username) => { ctx.username = username; ctx.role = null; go("/"); };
ctx.toggleTheme = toggleTheme;
setUnauthorizedHandler(() => { ctx.role = null; if (currentPath() !== "/login") go("/login"); });
window.addEventListener("hashchange", render);
try { ctx.username = localStorage.getItem("username"); } catch { ctx.username = null; }
render();
