// The event histogram: an SVG bar chart over a fixed window of 15-minute buckets ending
// now. The API returns only non-empty buckets; gaps are filled here so the bars keep
// their place and the chart never reflows as data arrives.
import { h, svg, mount } from "./dom.js";
import { num, parseTime } from "./format.js";

const H = 176;
const AXIS = 18;

function pad(n) { return String(n).padStart(2, "0"); }
function hhmm(ms) { const d = new Date(ms); return `${pad(d.getHours())}:${pad(d.getMinutes())}`; }

/** A histogram over the last `buckets` × `minutes`; returns {el, update(list)}. */
export function histogram({ buckets = 96, minutes = 15 } = {}) {
  const box = h("div", { class: "histo", role: "img", "aria-label": "Events over time" });
  const step = minutes * 60000;
  let last = [];
  function update(list) {
    last = list;
    // Drawn at the box's own pixel width, so the axis text is never stretched.
    const W = Math.max(200, box.clientWidth - 28 || 1000);
    const end = Math.floor(Date.now() / step) * step;
    const start = end - (buckets - 1) * step;
    const counts = new Array(buckets).fill(0);
    for (const b of Array.isArray(list) ? list : []) {
      const d = parseTime(b && b.time);
      if (!d) continue;
      const i = Math.floor((d.getTime() - start) / step);
      if (i >= 0 && i < buckets) counts[i] += Number(b.count) || 0;
    }
    const max = Math.max(1, ...counts);
    const bw = W / buckets;
    const plot = H - AXIS;
    const nodes = [
      svg("line", { class: "grid-line", x1: 0, x2: W, y1: plot + 0.5, y2: plot + 0.5 }),
      svg("line", { class: "grid-line", x1: 0, x2: W, y1: 0.5, y2: 0.5 }),
      svg("text", { class: "axis", x: W, y: 10, "text-anchor": "end" }, `${num(max)} / ${minutes} min`),
    ];
    counts.forEach((c, i) => {
      const bh = c ? Math.max(2, (c / max) * (plot - 14)) : 0;
      const rect = svg("rect", { class: "bar", x: (i * bw + 1).toFixed(1), y: (plot - bh).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: bh.toFixed(1) });
      rect.append(svg("title", {}, `${hhmm(start + i * step)} — ${num(c)} events`));
      nodes.push(rect);
    });
    const ticks = W < 500 ? 3 : 6;
    for (let i = 0; i < buckets - buckets / ticks / 2; i += Math.floor(buckets / ticks)) {
      nodes.push(svg("text", { class: "axis", x: (i * bw).toFixed(1), y: H - 3 }, hhmm(start + i * step)));
    }
    nodes.push(svg("text", { class: "axis", x: W, y: H - 3, "text-anchor": "end" }, "now"));
    mount(box, svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H }, nodes));
  }
  let width = 0;
  new ResizeObserver(() => {
    if (box.clientWidth !== width) { width = box.clientWidth; update(last); }
  }).observe(box);
  update([]);
  return { el: box, update };
}
