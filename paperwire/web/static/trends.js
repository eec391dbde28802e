// The search page's trend chart: papers matching the query per month or week (GET /api/trends), drawn
// as SVG, with a second view of their share of all papers. Without this script the page simply has no chart.
(function () {
  "use strict";
  const box = document.getElementById("trend");
  if (!box) return;
  const SVG = "http://www.w3.org/2000/svg";
  // drawn in CSS pixels at the box's width, so labels keep their size on a phone and a wide screen
  const LEFT = 52, RIGHT = 8, TOP = 10, BOTTOM = 24;
  let data = null;
  let view = "counts";

  function make(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function count(n) { return n.toLocaleString("en-US"); }
  function share(x) { return x ? (100 * x).toFixed(x < 0.001 ? 3 : x < 0.1 ? 2 : 1) + "%" : "0%"; }
  function shown(v) { return view === "counts" ? count(Math.round(v)) : share(v); }

  function tip(parent, text) { make("title", {}, parent).textContent = text; }

  function draw() {
    const chart = box.querySelector(".trend-chart");
    chart.replaceChildren();
    const WIDTH = Math.max(280, Math.round(chart.getBoundingClientRect().width) || 720);
    const HEIGHT = WIDTH < 500 ? 110 : 150;
    const periods = data.periods;
    const values = data.series.map((s) => (view === "counts" ? s.counts : s.shares));
    const top = Math.max(0, ...values.flat());
    const plotWidth = WIDTH - LEFT - RIGHT, plotHeight = HEIGHT - TOP - BOTTOM;
    const step = plotWidth / periods.length;
    const y = (v) => TOP + plotHeight - (top ? (v / top) * plotHeight : 0);
    const label = view === "counts" ? "matching papers" : "share of all papers";
    const svg = make("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT, class: "trend-svg", role: "img",
      "aria-label": `${data.series.map((s) => s.q).join(", ")}: ${label} per ${data.by}`,
    }, chart);
    for (const f of [0, 0.5, 1]) {
      make("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y(f * top), y2: y(f * top), class: "grid" }, svg);
      make("text", { x: LEFT - 6, y: y(f * top) + 4, class: "axis", "text-anchor": "end" }, svg)
        .textContent = shown(f * top);
    }
    const every = Math.max(1, Math.ceil(periods.length / Math.max(2, Math.floor(plotWidth / 90))));
    periods.forEach((p, i) => {
      if (i % every) return;
      make("text", { x: LEFT + (i + 0.5) * step, y: HEIGHT - 10, class: "axis", "text-anchor": "middle" }, svg)
        .textContent = p.key;
    });
    if (data.series.length === 1) {
      const s = data.series[0];
      periods.forEach((p, i) => {
        // each bar leads to the search narrowed to its period
        const link = make("a", { href: `${box.dataset.search}&from=${p.first}&to=${p.last}`, class: "bar-link" }, svg);
        const v = values[0][i];
        const bar = make("rect", {
          x: LEFT + i * step + step * 0.1, width: Math.max(1, step * 0.8), y: y(v), height: TOP + plotHeight - y(v),
          class: "bar", "data-key": p.key, "data-value": v,
        }, link);
        tip(bar, `${p.key}: ${count(s.counts[i])} of ${count(p.papers)} papers (${share(s.shares[i])})`);
      });
    } else {
      data.series.forEach((s, k) => {
        const points = values[k].map((v, i) => `${LEFT + (i + 0.5) * step},${y(v)}`).join(" ");
        make("polyline", { points, class: `line s${k}` }, svg);
        values[k].forEach((v, i) => {
          const dot = make("circle", { cx: LEFT + (i + 0.5) * step, cy: y(v), r: 3, class: `dot s${k}`,
                                       "data-key": periods[i].key, "data-value": v }, svg);
          tip(dot, `${s.q} · ${periods[i].key}: ${count(s.counts[i])} of ${count(periods[i].papers)} papers ` +
                   `(${share(s.shares[i])})`);
        });
      });
    }
    const legend = box.querySelector(".trend-legend");
    legend.replaceChildren(...data.series.map((s, k) => {
      const item = document.createElement("li");
      item.className = `s${k}`;
      item.textContent = `${s.q} — ${count(s.papers)} papers`;
      return item;
    }));
    legend.hidden = data.series.length < 2;
    note.textContent = data.series.length === 1
      ? `${count(data.series[0].papers)} papers have every word of the search (by first-version date); ` +
        "a bar opens its period's results."
      : "Papers with every word of each search, by first-version date.";
    box.querySelector("[data-by]").textContent = data.by;
  }

  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => { if (data) draw(); }, 150);
  });

  box.querySelectorAll("[data-view]").forEach((button) => {
    button.addEventListener("click", () => {
      view = button.dataset.view;
      box.querySelectorAll("[data-view]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      if (data) draw();
    });
  });

  const note = box.querySelector(".trend-note");

  // The search's own trend, then others beside it: `extra` are more queries (q=a&q=b).
  async function load(extra) {
    const url = box.dataset.src + extra.map((q) => "&q=" + encodeURIComponent(q)).join("");
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const answer = await response.json();
    if (!response.ok) {  // a bad compared query: say why, keep the chart as it was
      note.textContent = answer.error || "That comparison could not be made.";
      note.classList.add("error");
      return;
    }
    note.classList.remove("error");
    if (!answer.periods.length) return;
    data = answer;
    box.hidden = false;
    draw();
  }

  const compare = box.querySelector("form.trend-compare");
  compare.addEventListener("submit", (event) => {
    event.preventDefault();
    const extra = [...compare.querySelectorAll("input[name=vs]")].map((i) => i.value.trim()).filter(Boolean);
    load(extra).catch(() => {});
  });

  load([]).catch(() => {});  // no chart: the results are still there
})();
