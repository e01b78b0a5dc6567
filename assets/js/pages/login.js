// Login, and the forced password change of a new or reset account: the API answers
// `must_change_password`, every other route is 403 until it is changed, so the page
// changes it with the first token and signs in again with the new password.
import { h, mount } from "../dom.js";
import { api, setToken } from "../api.js";

const MIN = 12;
const MAX = 72;

function bytes(s) { return new TextEncoder().encode(s).length; }

function frame(ctx, ...children) {
  const theme = h("button", { type: "button", class: "ghost icon", id: "theme-toggle", title: "Toggle theme", "aria-label": "Toggle dark/light theme", on: { click: () => ctx.toggleTheme() } }, "◐");
  return h("div", { class: "login-wrap" },
    h("form", { class: "panel login", novalidate: true },
      h("div", { class: "brand" }, h("img", { src: "/favicon.svg", alt: "" }), "decnet", h("span", { class: "spacer" }), theme),
      ...children));
}

async function signIn(username, password) {
  return api("/auth/login", { method: "POST", body: { username, password }, auth: false });
}

function changeForm(root, ctx, username, oldPassword, firstToken) {
  const next = h("input", { type: "password", id: "new-password", autocomplete: "new-password", required: true, minlength: String(MIN) });
  const again = h("input", { type: "password", id: "confirm-password", autocomplete: "new-password", required: true });
  const err = h("div", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "change-submit" }, "Set password and continue");
  const form = frame(ctx,
    h("p", {}, "This account needs a new password before it can be used."),
    h("div", { class: "notice" }, `At least ${MIN} characters, at most ${MAX} bytes.`),
    h("label", { class: "field" }, "New password", next),
    h("label", { class: "field" }, "Repeat it", again),
    err, submit);
  mount(root, form);
  next.focus();
  form.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    if (next.value.length < MIN || bytes(next.value) > MAX) { err.textContent = `Use ${MIN} to ${MAX} bytes.`; return; }
    if (next.value !== again.value) { err.textContent = "The two passwords differ."; return; }
    if (next.value === oldPassword) { err.textContent = "Choose a password different from the current one."; return; }
    submit.disabled = true;
    try {
      setToken(firstToken);
      await api("/auth/change-password", { method: "POST", body: { old_password: oldPassword, new_password: next.value } });
      // The change revokes every older token, the first one included.
      const r = await signIn(username, next.value);
      setToken(r.access_token);
      ctx.signedIn(username);
    } catch (ex) {
      setToken(null);
      err.textContent = ex.detail || ex.message;
      submit.disabled = false;
    }
  });
}

/** The login page. */
export function render(root, ctx) {
  document.title = "Sign in · decnet";
  const user = h("input", { type: "text", id: "username", autocomplete: "username", required: true, value: "admin" });
  const pass = h("input", { type: "password", id: "password", autocomplete: "current-password", required: true });
  const err = h("div", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "login-submit" }, "Sign in");
  const form = frame(ctx,
    h("p", {}, "Sign in to the deception network console."),
    h("label", { class: "field" }, "Username", user),
    h("label", { class: "field" }, "Password", pass),
    err, submit);
  mount(root, form);
  (user.value ? pass : user).focus();
  form.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    if (!user.value || !pass.value) { err.textContent = "Enter a username and a password."; return; }
    submit.disabled = true;
    try {
      const r = await signIn(user.value, pass.value);
      try { localStorage.setItem("username", user.value); } catch { /* private mode */ }
      if (r.must_change_password) changeForm(root, ctx, user.value, pass.value, r.access_token);
      else { setToken(r.access_token); ctx.signedIn(user.value); }
    } catch (ex) {
      err.textContent = ex.status === 429 ? "Too many attempts; wait a few minutes." : ex.detail || ex.message;
      submit.disabled = false;
    }
  });
}
