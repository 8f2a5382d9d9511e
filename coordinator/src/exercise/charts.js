// Line charts drawn as SVG by the exercise console and the DVR page (the server puts this file
// into both pages, which load nothing from elsewhere): axes with units, a legend, one colour per
// series, the value under the pointer, turn boundaries dotted and events as numbered discs; a
// linear, index or log scale. Every text goes in with textContent, never as markup.
(function () {
"use strict";
const SVG = "http://www.w3.org/2000/svg";
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function sv(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD"];
function colour(i) { return i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.5) % 360}, 65%, 42%)`; }
function niceStep(span, target) {
  if (!(span > 0)) return 1;
  const raw = span / target, mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}
function axisLabel(v) {
  const a = Math.abs(v);
  if (a < 1e-9) return "0";
  if (a >= 1e6) return fmt(v / 1e6, 1) + "M";
  if (a >= 1e4) return fmt(v / 1e3, 0) + "k";
  return a >= 100 ? fmt(v, 0) : a >= 1 ? fmt(v, 1) : fmt(v, 3);
}
// series: [{name, values, colour}], values[i] is the value after tick firstTick + i.
function lineChart(opts) {
  const { series, firstTick, yLabel, log, markers, boundaries, title } = opts;
  const W = 760, H = 300, L = 64, R = 14, T = 12, B = 40;
  const wrap = el("div", { class: "chart" });
  const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  svg.append(sv("title", {}, title));
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const all = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (!all.length) return el("p", { class: "muted chart-empty", text: "Nothing to chart yet: the first turn has not run." });
  let y0 = all.length ? Math.min(...all) : 0, y1 = all.length ? Math.max(...all) : 1;
  // Quantities start at zero; an index or a log scale shows the range the data moved over.
  if (opts.zero) y0 = Math.min(0, y0);
  if (y1 - y0 < Math.abs(y1) * 0.02 || y1 <= y0) {
    // A flat line: give it room (a line at zero gets an axis of 0 to 1).
    const pad = Math.abs(y1) > 1e-9 ? Math.abs(y1) * 0.05 : 1;
    y0 = opts.zero ? Math.min(0, y0) : y0 - pad; y1 += pad;
    if (log && y0 <= 0) y0 = y1 / 2;
  }
  const f = log ? (v) => Math.log10(Math.max(v, 1e-9)) : (v) => v;
  let fy0 = f(y0), fy1 = f(y1);
  if (log) { fy0 = Math.floor(fy0 * 2) / 2; fy1 = Math.ceil(fy1 * 2) / 2; if (fy1 <= fy0) fy1 = fy0 + 1; }
  else { const st = niceStep(fy1 - fy0, 5); fy1 = Math.ceil(fy1 / st) * st; fy0 = Math.floor(fy0 / st) * st; }
  const x0 = firstTick, x1 = firstTick + n - 1;
  const sx = (x) => L + (x - x0) / Math.max(1, x1 - x0) * (W - L - R);
  const sy = (v) => T + (H - T - B) - (f(v) - fy0) / (fy1 - fy0) * (H - T - B);
  // Y axis: grid and labels.
  const yTicks = [];
  if (log) { for (let e = Math.ceil(fy0); e <= fy1; e++) for (const m of [1, 2, 5]) { const v = m * Math.pow(10, e); if (f(v) >= fy0 && f(v) <= fy1) yTicks.push(v); } }
  else { const st = niceStep(fy1 - fy0, 5); for (let v = fy0; v <= fy1 + st * 1e-9; v += st) yTicks.push(v); }
  for (const v of yTicks) {
    const y = sy(v);
    svg.append(sv("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e3e6ea" }));
    svg.append(sv("text", { x: L - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#3c4a59", class: "y-tick" }, axisLabel(v)));
  }
  // X axis: ticks, turn boundaries, event markers.
  const xs = Math.max(1, Math.round(niceStep(Math.max(1, x1 - x0), 8)));
  for (let x = Math.ceil(x0 / xs) * xs; x <= x1; x += xs) {
    svg.append(sv("line", { x1: sx(x), x2: sx(x), y1: H - B, y2: H - B + 4, stroke: "#777" }));
    svg.append(sv("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#3c4a59", class: "x-tick" }, String(x)));
  }
  for (const t of boundaries || []) {
    if (t <= x0 || t > x1) continue;
    svg.append(sv("line", { x1: sx(t), x2: sx(t), y1: T, y2: H - B, stroke: "#9aa5b1", "stroke-dasharray": "2 3", class: "turn-boundary" }));
  }
  const atTick = {};
  (markers || []).forEach((m, i) => {
    if (m.tick < x0 || m.tick > x1) return;
    const x = sx(m.tick), k = (atTick[m.tick] = (atTick[m.tick] || 0) + 1) - 1;
    svg.append(sv("line", { x1: x, x2: x, y1: T, y2: H - B, stroke: "#b3261e", "stroke-width": 1, opacity: 0.6, class: "event-marker" }));
    const g = sv("g", { class: "event-marker" });
    // Markers at the same tick stack down the plot, each numbered as in the table below it.
    const cy = T + 9 + k * 16;
    g.append(sv("circle", { cx: x, cy, r: 7, fill: "#b3261e" }));
    g.append(sv("text", { x, y: cy + 3.5, "text-anchor": "middle", "font-size": 9, fill: "#fff" }, String(i + 1)));
    g.append(sv("title", {}, `${i + 1}. tick ${m.tick}: ${m.text}`));
    svg.append(g);
  });
  svg.append(sv("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#5b6570" }));
  svg.append(sv("text", { x: L + (W - L - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 12, class: "x-label" }, "tick (turn boundaries dotted, events numbered in red)"));
  svg.append(sv("text", { x: 14, y: T + (H - T - B) / 2, "text-anchor": "middle", "font-size": 12, transform: `rotate(-90 14 ${T + (H - T - B) / 2})`, class: "y-label" }, yLabel + (log ? " (log scale)" : "")));
  series.forEach((s) => {
    const pts = s.values.map((v, i) => Number.isFinite(v) && (!log || v > 0) ? `${sx(x0 + i).toFixed(1)},${sy(v).toFixed(1)}` : null).filter(Boolean);
    svg.append(sv("polyline", { fill: "none", stroke: s.colour, "stroke-width": 2, points: pts.join(" "), class: "series" }));
  });
  // The value under the pointer.
  const cursor = sv("line", { y1: T, y2: H - B, stroke: "#1d2733", "stroke-width": 1, visibility: "hidden" });
  svg.append(cursor);
  const tip = el("div", { class: "tip", hidden: "" });
  svg.addEventListener("mousemove", (ev) => {
    const box = svg.getBoundingClientRect();
    const px = (ev.clientX - box.left) / box.width * W;
    if (px < L || px > W - R) { cursor.setAttribute("visibility", "hidden"); tip.hidden = true; return; }
    const i = Math.round((px - L) / (W - L - R) * Math.max(1, x1 - x0));
    cursor.setAttribute("x1", sx(x0 + i)); cursor.setAttribute("x2", sx(x0 + i)); cursor.setAttribute("visibility", "visible");
    const lines = [`tick ${x0 + i}`].concat(series.filter((s) => i < s.values.length).map((s) => `${s.name}: ${axisLabel(s.values[i])}`));
    const near = (markers || []).filter((m) => m.tick === x0 + i).map((m) => `event: ${m.text}`);
    tip.replaceChildren(...lines.concat(near).map((l) => el("div", { text: l })));
    tip.hidden = false;
    const left = (ev.clientX - box.left) + 14;
    tip.style.left = `${Math.min(left, box.width - 200)}px`; tip.style.top = `${(ev.clientY - box.top) + 10}px`;
  });
  svg.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.hidden = true; });
  const legend = el("div", { class: "legend" }, ...series.map((s) => el("span", { class: "legend-item" }, el("span", { class: "swatch", style: `background:${s.colour}` }), s.name)));
  wrap.append(svg, tip, legend);
  return wrap;
}
window.Charts = { lineChart, colour, axisLabel };
})();
