// A dense data table with fixed row heights, optional click-to-expand detail rows and a
// pager. Cells are built by each page's column getters (strings become text nodes).
import { h, mount, empty } from "./dom.js";
import { num } from "./format.js";
import { api, rows, notAvailable } from "./api.js";

/**
 * columns: [{label, width, cls, get(row) -> string | Node}]
 * onRow(row): navigate on click; expand(row) -> Node: toggle a detail row instead.
 */
export function dataTable({ columns, onRow, expand, emptyTitle = "Nothing yet", emptyText = "" }) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.cls, style: null }, c.label)));
  const colgroup = h("colgroup", {}, columns.map((c) => {
    const col = h("col");
    if (c.width) col.style.width = c.width;
    return col;
  }));
  const body = h("tbody");
  const table = h("table", {}, colgroup, h("thead", {}, head), body);
  const wrap = h("div", { class: "table-wrap" }, table);
  const emptyBox = h("div", { class: "hidden" });
  const el = h("div", {}, wrap, emptyBox);

  function rowEl(r, fresh) {
    const tr = h("tr", { class: [onRow || expand ? "clickable" : "", fresh ? "fresh" : ""], tabindex: onRow || expand ? "0" : null },
      columns.map((c) => {
        const v = c.get(r);
        const td = h("td", { class: c.cls }, v);
        if (typeof v === "string") td.title = v;
        return td;
      }));
    const act = () => {
      if (onRow) { onRow(r); return; }
      const next = tr.nextElementSibling;
      if (next && next.classList.contains("detail")) { next.remove(); tr.classList.remove("open"); return; }
      tr.classList.add("open");
      tr.after(h("tr", { class: "detail" }, h("td", { colspan: String(columns.length) }, expand(r))));
    };
    if (onRow || expand) {
      tr.addEventListener("click", act);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") act(); });
    }
    return tr;
  }

  function showEmpty(isEmpty, title, text) {
    emptyBox.classList.toggle("hidden", !isEmpty);
    if (isEmpty) mount(emptyBox, empty(title || emptyTitle, text === undefined ? emptyText : text));
  }

  return {
    el,
    /** Replaces the rows. */
    set(rows) {
      mount(body, rows.map((r) => rowEl(r, false)));
      showEmpty(rows.length === 0);
    },
    /** Adds rows on top (newest first), keeping at most `cap`. */
    prepend(rows, cap) {
      const frag = document.createDocumentFragment();
      rows.forEach((r) => frag.append(rowEl(r, true)));
      body.prepend(frag);
      while (body.children.length > cap) body.lastElementChild.remove();
      showEmpty(body.children.length === 0);
    },
    /** Shows a message instead of rows (an error, or "not available"). */
    message(title, text) {
      body.replaceChildren();
      showEmpty(true, title, text);
    },
  };
}

/** Previous/next pager over `{total, offset, limit}`; `go(offset)` loads a page. */
export function pager(go) {
  const info = h("span", { class: "num" });
  const prev = h("button", { type: "button", "aria-label": "Previous page" }, "‹ Prev");
  const next = h("button", { type: "button", "aria-label": "Next page" }, "Next ›");
  let state = { total: 0, offset: 0, limit: 50 };
  prev.addEventListener("click", () => go(Math.max(0, state.offset - state.limit)));
  next.addEventListener("click", () => go(state.offset + state.limit));
  return {
    el: h("div", { class: "pager" }, info, h("span", { class: "spacer" }), prev, next),
    update(total, offset, limit, shown) {
      state = { total, offset, limit };
      const last = Math.min(total, offset + shown);
      info.textContent = total ? `${num(offset + 1)}–${num(last)} of ${num(total)}` : "0 results";
      prev.disabled = offset <= 0;
      next.disabled = offset + limit >= total;
    },
  };
}

/**
 * A paged list backed by `path`: a table, a pager and a counter wired together. `query()`
 * gives the current filters; `load(reset)` fetches (from the first page when `reset`).
 */
export function pagedList({ path, query, columns, noun, what, onRow, expand, emptyTitle, emptyText, limit = 50 }) {
  let offset = 0;
  const count = h("span", { class: "muted num" });
  const table = dataTable({ columns, onRow, expand, emptyTitle, emptyText });
  const pg = pager((o) => { offset = o; load(false); });
  async function load(reset) {
    if (reset) offset = 0;
    try {
      const p = await api(path, { query: { limit, offset, ...query() } });
      const list = rows(p);
      const total = typeof p?.total === "number" ? p.total : list.length;
      table.set(list);
      count.textContent = `${num(total)} ${noun}`;
      pg.update(total, offset, limit, list.length);
    } catch (e) {
      if (e.status === 401) return;
      table.message(notAvailable(e) ? `${what} not available on this master yet` : `Could not load ${what.toLowerCase()}`, notAvailable(e) ? "" : e.detail || "");
      count.textContent = "";
      pg.update(0, 0, limit, 0);
    }
  }
  return { count, table, pager: pg, load };
}

/** A search toolbar: the input (focused by `/`), extra controls, a submit button. */
export function searchBar(input, extras, submit, onSubmit) {
  input.dataset.search = "";
  input.type = "search";
  input.autocomplete = "off";
  const form = h("form", { class: "toolbar", role: "search" },
    h("div", { class: "search grow" }, input, h("kbd", { text: "/" })), extras,
    h("button", { type: "submit", class: "primary" }, submit));
  form.addEventListener("submit", (e) => { e.preventDefault(); onSubmit(); });
  return form;
}
