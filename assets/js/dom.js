// DOM building without markup strings. Every text that reaches the page goes through
// createTextNode/textContent, never innerHTML: log data is attacker-controlled, and this
// module is the one place elements are made, so the rule holds by construction.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: `h("td", {class: "num"}, "12")`. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element with attributes. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A modal dialog; resolves true when confirmed. */
export function confirmDialog(title, message, { danger = false, ok = "Confirm" } = {}) {
  return new Promise((resolve) => {
    const d = h("dialog", { "aria-label": title });
    const done = (v) => { d.close(); d.remove(); resolve(v); };
    d.append(
      h("div", { class: "body" }, h("h3", { text: title }), h("p", { class: "muted", text: message })),
      h("footer", {},
        h("button", { type: "button", on: { click: () => done(false) } }, "Cancel"),
        h("button", { type: "button", class: danger ? "danger solid" : "primary", on: { click: () => done(true) } }, ok)),
    );
    d.addEventListener("cancel", () => done(false));
    document.body.append(d);
    d.showModal();
  });
}

/** A short message in the corner. */
export function toast(text, kind = "") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const t = h("div", { class: ["toast", kind] }, text);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}

/** A panel with a header (title, then any controls) and a body. */
export function panel(title, controls, ...body) {
  return h("section", { class: "panel" },
    h("header", {}, h("h2", { text: title }), h("span", { class: "spacer" }), controls),
    ...body);
}

/** The "nothing here" block. */
export function empty(title, detail) {
  return h("div", { class: "empty" }, h("b", { text: title }), detail || "");
}

/** A modal asking for one value; resolves with it, or null when cancelled. */
export function promptDialog(title, label, { type = "text", ok = "Save", value = "" } = {}) {
  return new Promise((resolve) => {
    const input = h("input", { type, value, "aria-label": label, autocomplete: type === "password" ? "new-password" : "off" });
    const form = h("form", { method: "dialog" });
    const d = h("dialog", { "aria-label": title }, form);
    const done = (v) => { d.close(); d.remove(); resolve(v); };
    form.append(
      h("div", { class: "body" }, h("h3", { text: title }), h("label", { class: "field" }, label, input)),
      h("footer", {},
        h("button", { type: "button", on: { click: () => done(null) } }, "Cancel"),
        h("button", { type: "submit", class: "primary" }, ok)));
    form.addEventListener("submit", (e) => { e.preventDefault(); done(input.value); });
    d.addEventListener("cancel", () => done(null));
    document.body.append(d);
    d.showModal();
    input.focus();
  });
}
