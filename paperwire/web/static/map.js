// The map page: every paper as a point (regl-scatterplot, WebGL), coloured by topic or by age, with topic
// labels, the hovered paper's title, a click through to the paper, and a search's hits or the reader's
// library highlighted. Points come as one binary buffer (paperwire/rank/layout.py encode_points).
(function () {
  "use strict";
  const root = document.getElementById("map");
  if (!root || typeof window.createScatterplot !== "function") return;
  const canvas = root.querySelector("canvas");
  const tip = document.getElementById("map-tip");
  const labels = document.getElementById("map-labels");
  const status = document.getElementById("map-status");
  const NO_VALUE = 0xffff;
  const HEADER = 32;
  // 20 distinguishable hues, repeated with a lighter shade for topics past them
  const HUES = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
    "#31a354", "#756bb1", "#636363"];
  const AGE = ["#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#d1e5f0", "#92c5de", "#4393c3", "#2166ac"];

  function say(text) { status.textContent = text; }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 409) { window.location.reload(); throw new Error("map changed"); }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  async function start() {
    const started = performance.now();
    const marks = {};
    const mark = (name) => { marks[name] = Math.round(performance.now() - started); };
    const meta = await getJSON("/api/map/meta");
    mark("meta");
    const version = encodeURIComponent(meta.version);
    const response = await fetch("/api/map/points.bin?v=" + version);
    if (!response.ok) throw new Error("the map's points could not be loaded (" + response.status + ")");
    const buffer = await response.arrayBuffer();
    mark("points");
    const head = new DataView(buffer);
    const n = head.getUint32(8, true);
    const x0 = head.getFloat32(16, true), y0 = head.getFloat32(20, true);
    const x1 = head.getFloat32(24, true), y1 = head.getFloat32(28, true);
    const qx = new Uint16Array(buffer, HEADER, n), qy = new Uint16Array(buffer, HEADER + 2 * n, n);
    const topic = new Uint16Array(buffer, HEADER + 4 * n, n), age = new Uint16Array(buffer, HEADER + 6 * n, n);
    // keep the layout's aspect: the longer side spans -1..1
    const w = Math.max(x1 - x0, 1e-9), h = Math.max(y1 - y0, 1e-9), side = Math.max(w, h);
    const sx = w / side, sy = h / side;
    const categories = meta.topics.reduce((m, t) => Math.max(m, t.index + 1), 0);
    const x = new Float32Array(n), y = new Float32Array(n), cat = new Float32Array(n), val = new Float32Array(n);
    const maxAge = Math.max(meta.max_age, 1);
    for (let i = 0; i < n; i++) {
      x[i] = (qx[i] / 65535 * 2 - 1) * sx;
      y[i] = (qy[i] / 65535 * 2 - 1) * sy;
      cat[i] = topic[i] === NO_VALUE ? categories : topic[i];
      val[i] = age[i] === NO_VALUE ? 1 : Math.sqrt(age[i] / maxAge);  // sqrt: recent weeks get more of the scale
    }
    mark("decoded");
    const topicColours = [];
    for (let i = 0; i < categories; i++) topicColours.push(HUES[i % HUES.length] + (i < HUES.length ? "" : "99"));
    topicColours.push("#aaaaaa");
    const size = n > 100000 ? 2 : n > 10000 ? 3 : n > 1000 ? 4 : 6;
    const scatterplot = window.createScatterplot({
      canvas, width: "auto", height: "auto", pointSize: size, pointSizeSelected: size + 2,
      pointOutlineWidth: 1, opacity: n > 50000 ? 0.6 : 0.85, opacityInactiveScale: 0.15,
      backgroundColor: "#ffffff", colorBy: "valueA", pointColor: topicColours,
      lassoOnLongPress: false, spatialIndexUseWorker: false, showReticle: false,
    });
    let points = null;
    window.paperwireMap = { scatterplot, meta, count: n };

    // labels sit at the point of each topic nearest the middle of its papers
    const shown = meta.topics.slice().sort((a, b) => b.size - a.size).slice(0, 40);
    const anchor = new Map(shown.map((t) => [t.index, { best: Infinity, point: -1, t }]));
    for (let i = 0; i < n; i++) {
      const a = anchor.get(topic[i]);
      if (!a) continue;
      const d = (qx[i] / 65535 - a.t.x) ** 2 + (qy[i] / 65535 - a.t.y) ** 2;
      if (d < a.best) { a.best = d; a.point = i; }
    }
    const labelNodes = [];
    for (const a of anchor.values()) {
      if (a.point < 0) continue;
      const link = document.createElement("a");
      link.href = "/topics/" + a.t.id;
      link.className = "map-label";
      link.textContent = a.t.label;
      link.title = a.t.size + " papers";
      labels.appendChild(link);
      labelNodes.push([link, a.point]);
    }
    // larger topics first; a label that would overlap one already placed waits until zooming parts them
    function placeLabels() {
      const placed = [];
      for (const [node, point] of labelNodes) {
        const at = scatterplot.getScreenPosition(point);
        if (!at) continue;
        const w = node.offsetWidth || 80, h = node.offsetHeight || 14;
        const box = [at[0] - w / 2, at[1] - h / 2, at[0] + w / 2, at[1] + h / 2];
        const clash = placed.some((o) => box[0] < o[2] && box[2] > o[0] && box[1] < o[3] && box[3] > o[1]);
        node.style.visibility = clash ? "hidden" : "visible";
        if (!clash) placed.push(box);
        node.style.transform = "translate(" + Math.round(at[0]) + "px," + Math.round(at[1]) + "px) translate(-50%,-50%)";
      }
    }

    const titles = new Map();
    let hovered = -1;
    async function paperAt(i) {
      if (!titles.has(i)) titles.set(i, getJSON("/api/map/paper/" + i + "?v=" + version));
      return titles.get(i);
    }
    scatterplot.subscribe("pointover", async (i) => {
      hovered = i;
      const at = scatterplot.getScreenPosition(i);
      try {
        const paper = await paperAt(i);
        if (hovered !== i) return;
        tip.textContent = paper.title + (paper.topic ? " — " + paper.topic.label : "");
        tip.hidden = false;
        if (at) tip.style.transform = "translate(" + Math.round(at[0] + 12) + "px," + Math.round(at[1] + 12) + "px)";
      } catch (err) { /* a point that is gone: no tip */ }
    });
    scatterplot.subscribe("pointout", () => { hovered = -1; tip.hidden = true; });
    // a click selects one point: open its paper (highlights are selected without the event)
    scatterplot.subscribe("select", async ({ points: chosen }) => {
      if (chosen.length !== 1) return;
      try {
        const paper = await paperAt(chosen[0]);
        window.location.assign(paper.url);
      } catch (err) { say(String(err.message || err)); }
    });
    scatterplot.subscribe("view", placeLabels);

    // what was drawn, for the page's readers and its tests: pixels that are not background, counted on
    // each draw until there are some (read in the draw event, while the frame is still in the buffer)
    const countInk = () => {
      const probe = document.createElement("canvas");
      probe.width = 160; probe.height = 120;
      const ctx = probe.getContext("2d");
      ctx.drawImage(canvas, 0, 0, probe.width, probe.height);
      const data = ctx.getImageData(0, 0, probe.width, probe.height).data;
      let ink = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 245 || data[i + 1] < 245 || data[i + 2] < 245)) ink++;
      root.dataset.ink = String(ink);
      if (ink > 0) scatterplot.unsubscribe("draw", countInk);
    };
    scatterplot.subscribe("draw", countInk);

    points = { x, y, valueA: cat, valueB: val };
    mark("created");
    await scatterplot.draw(points, { zDataType: "categorical", wDataType: "continuous" });
    mark("drawn");
    placeLabels();
    root.dataset.points = String(n);
    root.dataset.timings = JSON.stringify(marks);  // ms since this script started, per step
    root.dataset.ready = String(Math.round(performance.now()));  // ms since the page was asked for
    root.dataset.loaded = String(Math.round(performance.now() - started));  // ms of this script (fetch, decode, draw)
    say(n.toLocaleString() + " papers" + (meta.newest_day ? ", newest " + meta.newest_day : "") + ".");

    document.getElementById("map-colour").addEventListener("change", (event) => {
      const byAge = event.target.value === "age";
      scatterplot.set({ colorBy: byAge ? "valueB" : "valueA", pointColor: byAge ? AGE : topicColours });
      labels.hidden = byAge;
    });
    async function highlight(url, what) {
      try {
        const found = await getJSON(url);
        scatterplot.select(found.points, { preventEvent: true });
        say(found.points.length + " " + what + " highlighted.");
      } catch (err) { say(String(err.message || err)); }
    }
    document.getElementById("map-search").addEventListener("submit", (event) => {
      event.preventDefault();
      const q = event.target.elements.q.value.trim();
      if (!q) { scatterplot.deselect({ preventEvent: true }); say(n.toLocaleString() + " papers."); return; }
      highlight("/api/map/highlight?q=" + encodeURIComponent(q) + "&v=" + version, "hits of “" + q + "”");
    });
    const mine = document.getElementById("map-library");
    if (mine) mine.addEventListener("click", () => highlight("/api/map/library?v=" + version, "saved papers"));
    const initial = new URLSearchParams(window.location.search).get("q");
    if (initial) highlight("/api/map/highlight?q=" + encodeURIComponent(initial) + "&v=" + version, "hits of “" + initial + "”");
  }

  start().catch((err) => { root.dataset.error = String(err.message || err); say(String(err.message || err)); });
})();
