/* codecbench leaderboard: tables (sort, bitrate and domain filters) and the rate-distortion chart.
 *
 * Reads window.CODECBENCH_SITE (written by codecbench.leaderboard.site into data.js) and fills
 * each <section class="board" data-board="I">. Every string from the data goes into the page
 * through textContent or setAttribute, never through innerHTML.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var PALETTE = ["#2457c5", "#d1495b", "#2a9d8f", "#e09f3e", "#7b2cbf", "#3d405b", "#6a994e",
                 "#bc6c25", "#00798c", "#9e2a2b", "#577590", "#8d99ae"];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /* A number as shown: fewer decimals for larger magnitudes. */
  function fmt(x) {
    if (x === null || x === undefined) return "n/a";
    var a = Math.abs(x);
    if (a >= 1e5) return x.toPrecision(3);
    var digits = a >= 100 ? 1 : a >= 10 ? 2 : 3;
    return x.toFixed(digits);
  }

  /* A metric's figures for one entry: overall, or the domain's part of by_domain (null when absent). */
  function figures(entry, key, domain) {
    var m = entry.metrics[key];
    if (!m) return null;
    if (domain === "all") return m;
    return (m.by_domain && m.by_domain[domain]) || null;
  }

  function kbpsOf(entry, domain) {
    if (domain === "all") return entry.measured_kbps;
    var v = entry.measured_kbps_by_domain && entry.measured_kbps_by_domain[domain];
    return v === undefined ? null : v;
  }

  function bandOf(bands, kbps) {
    if (kbps === null || kbps === undefined) return "none";
    for (var i = 0; i < bands.length; i++) {
      var b = bands[i];
      if ((b.low === null || kbps >= b.low) && (b.high === null || kbps < b.high)) return b.id;
    }
    return "none";
  }

  function columnsFor(board, domain) {
    var cols = [
      {id: "codec", label: "codec", type: "text"},
      {id: "family", label: "family", type: "text"},
      {id: "measured_kbps", label: "kbps", unit: "measured", type: "num", higher: false},
      {id: "nominal_kbps", label: "kbps", unit: "nominal", type: "num", higher: false},
      {id: "items", label: "items", unit: "coded", type: "num", higher: true}
    ];
    board.metrics.forEach(function (m) {
      var applies = domain === "all" || board.entries.some(function (e) { return figures(e, m.key, domain); });
      if (!applies) return;
      cols.push({id: m.key, label: m.key, unit: (m.higher_is_better ? "\u2191 " : "\u2193 ") + m.unit,
                 type: "metric", higher: m.higher_is_better, metric: m});
    });
    return cols;
  }

  /* Sort value of a cell: a number, a string, or null (failures and missing values sort last). */
  function sortValue(entry, col, domain) {
    if (col.id === "codec") return entry.id;
    if (col.id === "family") return entry.family || null;
    if (col.id === "measured_kbps") return kbpsOf(entry, domain);
    if (col.id === "nominal_kbps") return entry.nominal_kbps;
    if (col.id === "items") return entry.n_items - entry.n_failed;
    var f = figures(entry, col.id, domain);
    return f && f.mean !== null && f.mean !== undefined ? f.mean : null;
  }

  function compareRows(col, dir, domain) {
    return function (a, b) {
      var va = sortValue(a, col, domain), vb = sortValue(b, col, domain);
      if (va === null && vb === null) return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
      if (va === null) return 1;
      if (vb === null) return -1;
      var c = typeof va === "number" ? va - vb : String(va).localeCompare(String(vb));
      if (c === 0) return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
      return dir === "ascending" ? c : -c;
    };
  }

  function metricCell(entry, col, domain) {
    var td = el("td", {"class": "num"});
    var f = figures(entry, col.id, domain);
    if (!f) {
      td.appendChild(el("span", {"class": "muted", title: "not measured for this entry or domain"}, "\u2014"));
      return td;
    }
    var total = f.n + f.n_failed;
    if (f.mean === null || f.mean === undefined) {
      var text = f.n_failed ? "failed " + f.n_failed + "/" + total : "no value (n=" + f.n + ")";
      td.appendChild(el("span", {"class": f.n_failed ? "fail" : "muted", title: f.reason || "no item gave a value"}, text));
      return td;
    }
    td.appendChild(el("span", {"class": "mean"}, fmt(f.mean)));
    if (f.ci_low !== null && f.ci_low !== undefined) {
      td.appendChild(el("span", {"class": "ci", title: "95% confidence interval"},
                        "[" + fmt(f.ci_low) + ", " + fmt(f.ci_high) + "]"));
    }
    var n = el("span", {"class": "n"}, "n=" + f.n);
    if (f.n_failed) n.appendChild(el("span", {"class": "fail"}, " failed " + f.n_failed + "/" + total));
    td.appendChild(n);
    return td;
  }

  function renderRow(board, entry, cols, domain) {
    var tr = el("tr", {"data-codec": entry.id, "data-family": entry.family || ""});
    cols.forEach(function (col) {
      var td;
      if (col.id === "codec") {
        td = el("td");
        td.appendChild(el("a", {href: entry.page}, entry.id));
      } else if (col.id === "family") {
        td = el("td", {}, entry.family || "\u2014");
      } else if (col.id === "measured_kbps" || col.id === "nominal_kbps") {
        var v = col.id === "measured_kbps" ? kbpsOf(entry, domain) : entry.nominal_kbps;
        td = el("td", {"class": "num"}, v === null || v === undefined ? "\u2014" : fmt(v));
        if (v === null || v === undefined) {
          td.title = col.id === "measured_kbps" ? "no measured bitrate" : "no nominal bitrate";
        }
      } else if (col.id === "items") {
        td = el("td", {"class": "num"});
        if (entry.n_failed) td.appendChild(el("span", {"class": "fail"}, "failed " + entry.n_failed + "/" + entry.n_items));
        else td.textContent = String(entry.n_items);
      } else {
        td = metricCell(entry, col, domain);
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function renderTable(section, board, state) {
    var table = section.querySelector("table.board");
    var cols = columnsFor(board, state.domain);
    if (!cols.some(function (c) { return c.id === state.sort; })) {
      state.sort = "codec";
      state.dir = "ascending";
    }
    var thead = table.querySelector("thead"), tbody = table.querySelector("tbody");
    thead.textContent = "";
    tbody.textContent = "";
    var hr = el("tr");
    cols.forEach(function (col) {
      var th = el("th", {scope: "col", "data-col": col.id, title: col.metric ? col.metric.description + " Evaluator: " + col.metric.evaluator + "."
                                                                          : "click to sort"});
      th.appendChild(el("span", {"class": "label"}, col.label));
      if (col.unit) th.appendChild(el("span", {"class": "unit"}, col.unit));
      if (col.id === state.sort) th.setAttribute("aria-sort", state.dir);
      th.tabIndex = 0;
      function sortHere() {
        if (state.sort === col.id) {
          state.dir = state.dir === "ascending" ? "descending" : "ascending";
        } else {
          state.sort = col.id;
          state.dir = col.type === "text" ? "ascending" : col.higher ? "descending" : "ascending";
        }
        renderTable(section, board, state);
      }
      th.addEventListener("click", sortHere);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortHere(); }
      });
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    var sortCol = cols.filter(function (c) { return c.id === state.sort; })[0];
    var rows = board.entries.filter(function (e) { return state.bands[bandOf(board.bands, e.measured_kbps)]; });
    rows.sort(compareRows(sortCol, state.dir, state.domain));
    rows.forEach(function (e) { tbody.appendChild(renderRow(board, e, cols, state.domain)); });
    if (!rows.length) {
      var tr = el("tr", {"class": "empty-row"});
      tr.appendChild(el("td", {colspan: String(cols.length)}, "no entry in the selected bitrate bands"));
      tbody.appendChild(tr);
    }
  }

  /* Ticks of a log axis: 1, 2, 5 x 10^k inside [lo, hi]. */
  function logTicks(lo, hi) {
    var ticks = [];
    for (var k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)); k++) {
      [1, 2, 5].forEach(function (m) {
        var t = m * Math.pow(10, k);
        if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push(t);
      });
    }
    return ticks;
  }

  function linearTicks(lo, hi, count) {
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / count)));
    [1, 2, 5, 10].some(function (m) { if ((hi - lo) / (step * m) <= count) { step *= m; return true; } return false; });
    var ticks = [];
    for (var i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) ticks.push(i * step);
    return ticks;
  }

  function renderChart(section, board, state) {
    var holder = section.querySelector(".chart-area");
    var notes = section.querySelector(".chart-notes");
    holder.textContent = "";
    notes.textContent = "";
    var metric = board.metrics.filter(function (m) { return m.key === state.chartMetric; })[0];
    if (!metric) return;
    var points = [], skipped = [];
    board.entries.forEach(function (e) {
      if (!state.bands[bandOf(board.bands, e.measured_kbps)]) return;
      var kbps = kbpsOf(e, state.domain), f = figures(e, metric.key, state.domain);
      if (kbps === null || kbps === undefined || !(kbps > 0)) { skipped.push(e.id + " (no measured bitrate)"); return; }
      if (!f) { skipped.push(e.id + " (not measured)"); return; }
      if (f.mean === null || f.mean === undefined) {
        skipped.push(e.id + (f.n_failed ? " (failed " + f.n_failed + "/" + (f.n + f.n_failed) + ")" : " (no value)"));
        return;
      }
      points.push({entry: e, kbps: kbps, y: f.mean, lo: f.ci_low, hi: f.ci_high, family: e.family || e.id});
    });
    if (skipped.length) notes.textContent = "Not drawn: " + skipped.join("; ") + ".";
    if (!points.length) {
      holder.appendChild(el("p", {"class": "muted"},
                            "No entry has both a measured bitrate and a value for " + metric.key + "."));
      return;
    }
    var W = 760, H = 420, L = 80, R = 180, T = 20, B = 55;
    var xs = points.map(function (p) { return p.kbps; });
    var ys = [];
    points.forEach(function (p) { ys.push(p.y); if (p.lo !== null && p.lo !== undefined) { ys.push(p.lo, p.hi); } });
    var x0 = Math.min.apply(null, xs) / 1.3, x1 = Math.max.apply(null, xs) * 1.3;
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    var pad = (y1 - y0) * 0.06;
    y0 -= pad; y1 += pad;
    function X(v) { return L + (Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) * (W - L - R); }
    function Y(v) { return T + (y1 - v) / (y1 - y0) * (H - T - B); }

    var root = svg("svg", {viewBox: "0 0 " + W + " " + H, width: String(W), height: String(H), role: "img",
                           "aria-label": metric.key + " against measured bitrate"});
    var grid = svg("g", {"class": "grid"}), axes = svg("g", {"class": "axis"});
    root.appendChild(grid);
    root.appendChild(axes);
    logTicks(x0, x1).forEach(function (t) {
      grid.appendChild(svg("line", {x1: X(t), x2: X(t), y1: T, y2: H - B}));
      axes.appendChild(svg("text", {x: X(t), y: H - B + 16, "text-anchor": "middle"}, String(t)));
    });
    linearTicks(y0, y1, 6).forEach(function (t) {
      grid.appendChild(svg("line", {x1: L, x2: W - R, y1: Y(t), y2: Y(t)}));
      axes.appendChild(svg("text", {x: L - 6, y: Y(t) + 4, "text-anchor": "end"}, String(+t.toPrecision(6))));
    });
    axes.appendChild(svg("line", {x1: L, x2: W - R, y1: H - B, y2: H - B}));
    axes.appendChild(svg("line", {x1: L, x2: L, y1: T, y2: H - B}));
    root.appendChild(svg("text", {"class": "axis-label", x: L + (W - L - R) / 2, y: H - 12, "text-anchor": "middle"},
                         "measured bitrate (kbit/s, log scale)" + (state.domain === "all" ? "" : ", " + state.domain)));
    var yMid = T + (H - T - B) / 2;  // two lines: the metric and its direction, then its unit
    root.appendChild(svg("text", {"class": "axis-label", transform: "translate(14," + yMid + ") rotate(-90)",
                                  "text-anchor": "middle"},
                         metric.key + " (" + (metric.higher_is_better ? "higher" : "lower") + " is better)"));
    root.appendChild(svg("text", {"class": "axis-label", transform: "translate(28," + yMid + ") rotate(-90)",
                                  "text-anchor": "middle"}, metric.unit));

    var families = [], allFamilies = [];  // colours follow the board's families, so filters never recolour
    points.forEach(function (p) { if (families.indexOf(p.family) < 0) families.push(p.family); });
    board.entries.forEach(function (e) {
      var fam = e.family || e.id;
      if (allFamilies.indexOf(fam) < 0) allFamilies.push(fam);
    });
    var legend = svg("g", {"class": "legend"});
    families.forEach(function (fam, i) {
      var color = PALETTE[allFamilies.indexOf(fam) % PALETTE.length];
      var series = points.filter(function (p) { return p.family === fam; }).sort(function (a, b) { return a.kbps - b.kbps; });
      var d = series.map(function (p, j) { return (j ? "L" : "M") + X(p.kbps).toFixed(1) + " " + Y(p.y).toFixed(1); }).join(" ");
      var g = svg("g", {"class": "family", "data-family": fam});
      g.appendChild(svg("path", {"class": "series", d: d, stroke: color, "data-family": fam}));
      series.forEach(function (p) {
        if (p.lo !== null && p.lo !== undefined) {
          g.appendChild(svg("line", {"class": "ci", x1: X(p.kbps), x2: X(p.kbps), y1: Y(p.lo), y2: Y(p.hi), stroke: color}));
        }
        var c = svg("circle", {"class": "point", cx: X(p.kbps), cy: Y(p.y), r: 4, fill: color, "data-codec": p.entry.id});
        c.appendChild(svg("title", {}, p.entry.id + ": " + fmt(p.y) + " " + metric.unit + " at " + fmt(p.kbps) + " kbit/s"));
        g.appendChild(c);
      });
      root.appendChild(g);
      var ly = T + 8 + i * 18;
      legend.appendChild(svg("rect", {x: W - R + 16, y: ly - 8, width: 14, height: 4, fill: color}));
      legend.appendChild(svg("text", {x: W - R + 36, y: ly - 2}, fam));
    });
    root.appendChild(legend);
    holder.appendChild(root);
  }

  function buildControls(section, board, state, redraw) {
    var controls = section.querySelector(".controls");
    controls.textContent = "";
    var bandSet = el("fieldset", {"class": "bands"});
    bandSet.appendChild(el("legend", {}, "measured bitrate (kbit/s)"));
    board.bands.concat([{id: "none", label: "no measured bitrate"}]).forEach(function (b) {
      var label = el("label");
      var box = el("input", {type: "checkbox", name: "band", value: b.id});
      box.checked = true;
      box.addEventListener("change", function () { state.bands[b.id] = box.checked; redraw(); });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + b.label));
      bandSet.appendChild(label);
    });
    controls.appendChild(bandSet);

    var domainLabel = el("label", {}, "domain ");
    var domainSelect = el("select", {name: "domain"});
    ["all"].concat(board.domains).forEach(function (d) {
      domainSelect.appendChild(el("option", {value: d}, d === "all" ? "all (each metric's own domains)" : d));
    });
    domainSelect.addEventListener("change", function () { state.domain = domainSelect.value; redraw(); });
    domainLabel.appendChild(domainSelect);
    controls.appendChild(domainLabel);

    var chartLabel = el("label", {}, "chart metric ");
    var metricSelect = el("select", {name: "chart-metric"});
    board.metrics.forEach(function (m) {
      metricSelect.appendChild(el("option", {value: m.key}, m.key + " (" + m.unit + ")"));
    });
    metricSelect.value = state.chartMetric;
    metricSelect.addEventListener("change", function () { state.chartMetric = metricSelect.value; redraw(); });
    chartLabel.appendChild(metricSelect);
    controls.appendChild(chartLabel);
  }

  function initBoard(section, board) {
    var first = board.metrics.filter(function (m) { return m.key === board.rank_by; })[0] || board.metrics[0];
    var state = {
      domain: "all",
      bands: {none: true},
      sort: first ? first.key : "codec",
      dir: first ? (first.higher_is_better ? "descending" : "ascending") : "ascending",
      chartMetric: first ? first.key : null
    };
    board.bands.forEach(function (b) { state.bands[b.id] = true; });
    function redraw() {
      renderTable(section, board, state);
      renderChart(section, board, state);
    }
    buildControls(section, board, state, redraw);
    redraw();
  }

  function init() {
    var site = window.CODECBENCH_SITE;
    if (!site) return;
    var sections = document.querySelectorAll("section.board[data-board]");
    Array.prototype.forEach.call(sections, function (section) {
      var board = site.boards[Number(section.getAttribute("data-board"))];
      if (board) initBoard(section, board);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
