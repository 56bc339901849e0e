/* audiotagger interactive report (-f html). No dependencies, no network: everything the page needs is in it.
 * The selection functions below port audiotagger/tag/select.py (select_classes, Selection.events,
 * Selection.summary); tests/test_report_browser.py checks that they give what `audiotagger tag` writes. */
(function () {
  "use strict";
  var LABEL_W = 180, AXIS_H = 20, ROW_H = 14, LANE_H = 12, LANE_GAP = 3, MAX_LANES = 120;
  var COMPAT_MIN = 3, COMPAT_MAX = 5, PER_SECOND_START_OFFSET = 0.001;
  var VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70",
    "#7ad151", "#bddf26", "#fde725"];

  var meta = JSON.parse(document.getElementById("at-meta").textContent);
  var R = window.audiotaggerReport = { ready: false, meta: meta };
  var n = meta.n, m = meta.m, L = meta.levels, names = meta.names, mids = meta.mids, C = names.length;
  var classes = meta.classes, colOf = new Int32Array(C).fill(-1);
  classes.forEach(function (c, j) { colOf[c] = j; });
  var end = meta.end;

  var D = {}, Q = null, peak = null, ties = new Map(), times = null, ends = null;
  var thr = null, qa = null;      // per-class thresholds (float32, C) and their levels per stored column
  var state = {
    auto: meta.options.threshold === "auto", threshold: meta.slider,
    topK: meta.options.top_k, showMS: meta.options.show_music_speech,
    compat: meta.options.compat, perSecond: meta.options.per_second, exclude: meta.options.exclude.slice(),
    search: "", rows: meta.heatmap_rows, v0: 0, v1: end, time: 0
  };
  var sel = { chosen: null, K: 0, events: [], summary: [], shown: new Map() };
  var player = null, LUT = buildLut();

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---------------------------------------------------------------- data
  function inflate(b64) {
    var u8;
    if (typeof Uint8Array.fromBase64 === "function") u8 = Uint8Array.fromBase64(b64);
    else {
      var bin = atob(b64);
      u8 = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    }
    var stream = new Blob([u8]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer();
  }

  function unpack(buf) {
    meta.layout.forEach(function (l) { D[l.name] = new window[l.type](buf, l.offset, l.length); });
    times = D.times;
    ends = new Float64Array(n);
    for (var i = 0; i < n; i++) {   // TagResult.ends
      var e = times[i] + meta.hop;
      ends[i] = meta.duration > times[i] ? Math.min(e, meta.duration) : e;
    }
    Q = D.q;                        // class-major: Q[j * n + i] is candidate class j at step i
    peak = new Uint16Array(m);
    for (var j = 0; j < m; j++) {
      var base = j * n, pk = 0;
      for (var s = 0; s < n; s++) if (Q[base + s] > pk) pk = Q[base + s];
      peak[j] = pk;
    }
    for (var k = 0; k < D.tie_rows.length; k++) ties.set(D.tie_rows[k] * m + D.tie_cols[k], D.tie_values[k]);
    if (D.thresholds) {
      thr = D.thresholds;
      qa = new Int32Array(m);
      for (j = 0; j < m; j++) qa[j] = qThreshold(thr[classes[j]]);
    }
  }

  function prob(i, j) {   // stored probability of candidate column j at step i
    var q = Q[j * n + i];
    if (!q) return 0;
    var t = ties.get(i * m + j);
    return t === undefined ? (q - 1) / L : t;
  }

  // ---------------------------------------------------------------- selection (port of tag/select.py)
  function qThreshold(t) { return Math.ceil(Math.fround(t) * L) + 1; }

  function aboveOwn(i, j) {       // --threshold auto: stored column j at step i reaches its class's threshold
    var q = Q[j * n + i];
    if (!q) return false;
    var t = ties.get(i * m + j);  // exact where the level alone would decide otherwise (encode.py)
    return t === undefined ? q >= qa[j] : t >= thr[classes[j]];
  }

  function hiddenSet() {
    var h = new Set(state.exclude);
    if (!state.showMS) meta.speech_music.forEach(function (c) { h.add(c); });
    return h;
  }

  function stepOrder(i, cols) {   // columns sorted like numpy's stable argsort of -p
    var key = i * m;
    cols.sort(function (a, b) {
      var d = Q[b * n + i] - Q[a * n + i];
      if (d) return d;
      var ta = ties.get(key + a), tb = ties.get(key + b);
      if (ta !== undefined && tb !== undefined && ta !== tb) return tb - ta;
      return a - b;
    });
    return cols;
  }

  function buckets(minQ, skip, own) {  // per step, the columns with level >= minQ (ascending), class by
    var start = new Int32Array(n + 1), j, base, i;  // class; own: those at or above their own threshold
    for (j = 0; j < m; j++) {
      if (skip && skip.has(classes[j])) continue;
      if (own) { for (i = 0; i < n; i++) if (aboveOwn(i, j)) start[i + 1]++; }
      else for (base = j * n, i = 0; i < n; i++) if (Q[base + i] >= minQ) start[i + 1]++;
    }
    for (i = 0; i < n; i++) start[i + 1] += start[i];
    var fill = start.slice(0, n), cols = new Int32Array(start[n]);
    for (j = 0; j < m; j++) {
      if (skip && skip.has(classes[j])) continue;
      if (own) { for (i = 0; i < n; i++) if (aboveOwn(i, j)) cols[fill[i]++] = j; }
      else for (base = j * n, i = 0; i < n; i++) if (Q[base + i] >= minQ) cols[fill[i]++] = j;
    }
    return { start: start, cols: cols };
  }

  function selectClasses() {      // select_classes: chosen class indices per step, best first, -1 padded
    var hidden = hiddenSet(), qt = qThreshold(state.threshold), own = autoOn();
    var K = state.compat ? COMPAT_MAX : Math.min(state.topK, C);
    var chosen = new Int32Array(n * K).fill(-1);
    // default rule: the visible classes at or above the threshold (auto: their own); compat: every stored
    // class (its best five are always stored) and how many reach the threshold (auto: their own)
    var b = state.compat ? buckets(1, null) : buckets(qt, hidden, own);
    for (var i = 0; i < n; i++) {
      var out = i * K, k = 0, cols = Array.prototype.slice.call(b.cols, b.start[i], b.start[i + 1]);
      stepOrder(i, cols);
      if (!state.compat) {
        for (k = 0; k < cols.length && k < K; k++) chosen[out + k] = classes[cols[k]];
      } else {
        var above = 0;
        for (k = 0; k < cols.length; k++) if (own ? aboveOwn(i, cols[k]) : Q[cols[k] * n + i] >= qt) above++;
        var shown = Math.min(Math.max(above - 1, COMPAT_MIN), COMPAT_MAX), pick = [];
        for (k = 0; k < shown && k < cols.length; k++) pick.push(classes[cols[k]]);
        if (pick.indexOf(meta.silence) >= 0) pick = [meta.silence];
        pick = pick.filter(function (c) { return !hidden.has(c); });
        for (k = 0; k < pick.length; k++) chosen[out + k] = pick[k];
      }
    }
    sel.chosen = chosen; sel.K = K;
  }

  function autoOn() { return state.auto && thr !== null; }

  function f32mean(i0, i1, j) {
    var s = 0;
    for (var i = i0; i < i1; i++) s += prob(i, j);
    return Math.fround(s / (i1 - i0));
  }

  function computeEvents() {     // Selection.events: runs of consecutive steps showing a class
    var K = sel.K, chosen = sel.chosen, runs = new Map(), events = [];
    for (var i = 0; i < n; i++) {
      for (var k = 0; k < K; k++) {
        var c = chosen[i * K + k];
        if (c < 0) break;
        var list = runs.get(c);
        if (!list) { list = []; runs.set(c, list); }
        var last = list[list.length - 1];
        if (!state.perSecond && last && last[1] === i) last[1] = i + 1; else list.push([i, i + 1]);
      }
    }
    var shown = new Map();
    Array.from(runs.keys()).sort(function (a, b) { return a - b; }).forEach(function (c) {
      var j = colOf[c], total = 0;
      runs.get(c).forEach(function (r) {
        var start = times[r[0]] + (state.perSecond ? PER_SECOND_START_OFFSET : 0);
        var ev = { start: start, end: ends[r[1] - 1], cls: c, score: f32mean(r[0], r[1], j), a: r[0], b: r[1] };
        total += ev.end - ev.start;
        events.push(ev);
      });
      shown.set(c, total);
    });
    events.sort(function (x, y) { return (x.start - y.start) || (y.score - x.score) || (x.cls - y.cls); });
    sel.events = events; sel.shown = shown;
  }

  function computeSummary() {    // Selection.summary: whole-file top classes by mean probability
    if (!n) { sel.summary = []; return; }
    var mean = D.means, hidden = hiddenSet(), order = [], top = [], c;
    for (c = 0; c < C; c++) order.push(c);
    order.sort(function (a, b) { return (mean[b] - mean[a]) || (a - b); });
    if (state.compat) {
      var above = 0;
      var own = autoOn();
      for (c = 0; c < C; c++) if (mean[c] >= (own ? thr[c] : state.threshold)) above++;
      var shown = Math.min(Math.max(above - 1, COMPAT_MIN), COMPAT_MAX);
      top = order.slice(0, shown).filter(function (x) { return !hidden.has(x); });
    } else {
      top = order.filter(function (x) { return !hidden.has(x); }).slice(0, state.topK);
    }
    var total = 0;
    top.forEach(function (x) { total += mean[x]; });
    total = total || 1;
    sel.summary = top.map(function (x) { return { cls: x, score: mean[x], share: 100 * mean[x] / total }; });
  }

  // ---------------------------------------------------------------- formatting
  function pad(x) { return (x < 10 ? "0" : "") + x; }
  function fmtTime(t, decimals) {
    t = Math.max(0, t);
    var d = decimals || 0, scale = Math.pow(10, d), whole = Math.round(t * scale) / scale;
    var h = Math.floor(whole / 3600), mnt = Math.floor((whole % 3600) / 60), s = whole - 3600 * h - 60 * mnt;
    var ss = d ? s.toFixed(d) : String(Math.round(s));
    if (s < 10) ss = "0" + ss;
    return h + ":" + pad(mnt) + ":" + ss;
  }
  function fmtDur(t) { return t < 60 ? t.toFixed(t < 10 ? 1 : 0) + " s" : fmtTime(t); }

  function buildLut() {
    var lut = new Uint8ClampedArray(256 * 3);
    for (var i = 0; i < 256; i++) {
      var x = i / 255 * (VIRIDIS.length - 1), k = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - k;
      for (var ch = 0; ch < 3; ch++) {
        var a = parseInt(VIRIDIS[k].substr(1 + 2 * ch, 2), 16), b = parseInt(VIRIDIS[k + 1].substr(1 + 2 * ch, 2), 16);
        lut[3 * i + ch] = Math.round(a + (b - a) * f);
      }
    }
    return lut;
  }
  var CSS_COLOURS = [];
  for (var ci = 0; ci < 256; ci++) CSS_COLOURS.push("rgb(" + LUT[3 * ci] + "," + LUT[3 * ci + 1] + "," + LUT[3 * ci + 2] + ")");
  function colour(p) { return CSS_COLOURS[Math.max(0, Math.min(255, Math.round(p * 255)))]; }

  // ---------------------------------------------------------------- view geometry
  function stepAt(t) {          // last step starting at or before t (-1 if none)
    var lo = 0, hi = n - 1, r = -1;
    while (lo <= hi) { var mid = (lo + hi) >> 1; if (times[mid] <= t) { r = mid; lo = mid + 1; } else hi = mid - 1; }
    return r;
  }
  function plotWidth(canvas) { return Math.max(10, canvas.clientWidth - LABEL_W); }
  function timeAt(canvas, clientX) {
    var x = clientX - canvas.getBoundingClientRect().left - LABEL_W;
    return state.v0 + x / plotWidth(canvas) * (state.v1 - state.v0);
  }
  function xOf(canvas, t) { return LABEL_W + (t - state.v0) / (state.v1 - state.v0) * plotWidth(canvas); }
  function setView(a, b) {
    var span = Math.min(Math.max(b - a, Math.min(end, Math.max(5 * meta.hop, 2))), end);
    a = Math.max(0, Math.min(a, end - span));
    state.v0 = a; state.v1 = a + span;
    $("view-range").textContent = fmtTime(state.v0) + " – " + fmtTime(state.v1);
    scheduleDraw();
  }
  function zoom(factor, at) {
    var a = state.v0, b = state.v1;
    if (at === undefined) at = (a + b) / 2;
    setView(at - (at - a) * factor, at + (b - at) * factor);
  }

  function sizeCanvas(canvas, cssH) {
    var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth;
    canvas.style.height = cssH + "px";
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(cssH * dpr);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  function drawAxis(ctx, canvas, y0) {
    var w = plotWidth(canvas), span = state.v1 - state.v0;
    var steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800];
    var step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) if (steps[i] / span * w >= 80) { step = steps[i]; break; }
    ctx.fillStyle = "#6b7280"; ctx.strokeStyle = "#c4c9d2"; ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top"; ctx.textAlign = "center";
    for (var t = Math.ceil(state.v0 / step) * step; t <= state.v1 + 1e-9; t += step) {
      var x = xOf(canvas, t);
      ctx.beginPath(); ctx.moveTo(x + 0.5, y0 + 12); ctx.lineTo(x + 0.5, y0 + AXIS_H); ctx.stroke();
      var text = fmtTime(t, step < 1 ? 1 : 0), half = ctx.measureText(text).width / 2;
      ctx.textAlign = x - half < LABEL_W + 2 ? "left" : x + half > LABEL_W + w ? "right" : "center";
      ctx.fillText(text, ctx.textAlign === "left" ? LABEL_W + 2 : ctx.textAlign === "right" ? LABEL_W + w : x, y0);
    }
  }

  var shortLabels = new Map();
  function label(ctx, text, y, h) {
    ctx.fillStyle = "#1d2330"; ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    var s = shortLabels.get(text), max = LABEL_W - 10;
    if (s === undefined) {
      s = text;
      if (ctx.measureText(s).width > max) {
        while (s.length > 1 && ctx.measureText(s + "…").width > max) s = s.slice(0, -1);
        s = s.trim() + "…";
      }
      shortLabels.set(text, s);
    }
    ctx.fillText(s, LABEL_W - 6, y + h / 2);
  }

  // ---------------------------------------------------------------- heatmap
  var heatRows = [];
  function chooseHeatRows() {
    var hidden = hiddenSet(), term = state.search.trim().toLowerCase(), cols = [];
    for (var j = 0; j < m; j++) {
      var c = classes[j];
      if (hidden.has(c) || !peak[j]) continue;
      if (term && names[c].toLowerCase().indexOf(term) < 0) continue;
      cols.push(j);
    }
    cols.sort(function (a, b) { return (peak[b] - peak[a]) || (a - b); });
    heatRows = cols.slice(0, state.rows);
  }

  var offscreen = document.createElement("canvas");
  function drawHeat() {
    var canvas = $("heat"), rows = heatRows.length, h = AXIS_H + Math.max(rows, 1) * ROW_H + 2;
    var ctx = sizeCanvas(canvas, h), w = plotWidth(canvas), dpr = window.devicePixelRatio || 1;
    ctx.clearRect(0, 0, canvas.clientWidth, h);
    drawAxis(ctx, canvas, 0);
    if (!rows) { label(ctx, "no class to show", AXIS_H, ROW_H); return; }
    var W = Math.max(1, Math.round(w * dpr)), span = state.v1 - state.v0;
    var img = new ImageData(W, rows), px = img.data, i0s = new Int32Array(W), i1s = new Int32Array(W);
    for (var x = 0; x < W; x++) {
      var a = state.v0 + x / W * span, b = state.v0 + (x + 1) / W * span;
      var i0 = Math.max(stepAt(a), 0), i1 = Math.max(stepAt(b - 1e-9), i0);
      if (i0 >= n || (ends[i0] <= a && i1 === i0) || times[0] > b) { i0s[x] = -1; continue; }
      if (ends[i0] <= a) i0++;
      i0s[x] = i0; i1s[x] = i1;
    }
    for (var r = 0; r < rows; r++) {
      var j = heatRows[r];
      for (x = 0; x < W; x++) {
        var o = 4 * (r * W + x);
        if (i0s[x] < 0) { px[o] = px[o + 1] = px[o + 2] = 240; px[o + 3] = 255; continue; }
        var best = 0;
        for (var i = i0s[x], bj = j * n; i <= i1s[x]; i++) { var q = Q[bj + i]; if (q > best) best = q; }
        var li = best ? Math.round((best - 1) / L * 255) : 0;
        px[o] = LUT[3 * li]; px[o + 1] = LUT[3 * li + 1]; px[o + 2] = LUT[3 * li + 2]; px[o + 3] = 255;
      }
    }
    offscreen.width = W; offscreen.height = rows;
    offscreen.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(offscreen, 0, 0, W, rows, LABEL_W, AXIS_H, w, rows * ROW_H);
    for (r = 0; r < rows; r++) label(ctx, names[classes[heatRows[r]]], AXIS_H + r * ROW_H, ROW_H);
  }

  // ---------------------------------------------------------------- event lanes
  var lanes = [];
  function chooseLanes() {
    var term = state.search.trim().toLowerCase(), list = [];
    sel.shown.forEach(function (sec, c) {
      if (!term || names[c].toLowerCase().indexOf(term) >= 0) list.push([c, sec]);
    });
    list.sort(function (a, b) { return (b[1] - a[1]) || (a[0] - b[0]); });
    lanes = list.slice(0, MAX_LANES).map(function (x) { return x[0]; });
    var byLane = new Map();
    lanes.forEach(function (c, k) { byLane.set(c, k); });
    sel.laneOf = byLane;
    $("event-count").textContent = sel.events.length + " runs of " + sel.shown.size + " classes (as in the TSV)" +
      (list.length > lanes.length ? " (first " + lanes.length + " lanes drawn)" : "") +
      (term ? ", matching “" + state.search.trim() + "”" : "");
  }

  function drawLanes() {
    var canvas = $("lanes"), h = AXIS_H + Math.max(lanes.length, 1) * (LANE_H + LANE_GAP) + 2;
    var ctx = sizeCanvas(canvas, h), w = plotWidth(canvas);
    ctx.clearRect(0, 0, canvas.clientWidth, h);
    drawAxis(ctx, canvas, 0);
    if (!lanes.length) { label(ctx, "no tags shown", AXIS_H, LANE_H); return; }
    lanes.forEach(function (c, k) {
      var y = AXIS_H + k * (LANE_H + LANE_GAP);
      ctx.fillStyle = k % 2 ? "#f6f7f9" : "#eef0f4";
      ctx.fillRect(LABEL_W, y, w, LANE_H);
      label(ctx, names[c], y, LANE_H);
    });
    var minW = 1 / (window.devicePixelRatio || 1);
    sel.events.forEach(function (e) {
      var k = sel.laneOf.get(e.cls);
      if (k === undefined || e.end < state.v0 || e.start > state.v1) return;
      var x0 = Math.max(xOf(canvas, e.start), LABEL_W), x1 = Math.min(xOf(canvas, e.end), LABEL_W + w);
      ctx.fillStyle = colour(e.score);
      ctx.fillRect(x0, AXIS_H + k * (LANE_H + LANE_GAP), Math.max(x1 - x0, minW), LANE_H);
    });
  }

  function eventAt(canvas, clientX, clientY) {
    var rect = canvas.getBoundingClientRect(), y = clientY - rect.top - AXIS_H;
    var k = Math.floor(y / (LANE_H + LANE_GAP));
    if (y < 0 || k >= lanes.length || y - k * (LANE_H + LANE_GAP) > LANE_H) return null;
    var c = lanes[k], t = timeAt(canvas, clientX), tol = 3 / plotWidth(canvas) * (state.v1 - state.v0);
    var hit = null;
    sel.events.forEach(function (e) {
      if (e.cls === c && e.start - tol <= t && t <= e.end + tol) hit = e;
    });
    return hit || { cls: c, lane: true };
  }

  // ---------------------------------------------------------------- summary and settings
  function drawSummary() {
    var box = $("summary"), tbl = el("table"), head = el("tr");
    ["top classes", "mean", "share", "shown"].forEach(function (t, i) { head.appendChild(el("th", i ? { "class": "num" } : null, t)); });
    tbl.appendChild(head);
    sel.summary.forEach(function (s) {
      var tr = el("tr", { "class": "pick", title: "search for this class" });
      tr.appendChild(el("td", null, names[s.cls]));
      tr.appendChild(el("td", { "class": "num" }, s.score.toFixed(3)));
      tr.appendChild(el("td", { "class": "num" }, s.share.toFixed(2) + " %"));
      tr.appendChild(el("td", { "class": "num" }, fmtDur(sel.shown.get(s.cls) || 0)));
      tr.addEventListener("click", function () { $("search").value = names[s.cls]; state.search = names[s.cls]; refresh(false); });
      tbl.appendChild(tr);
    });
    box.replaceChildren(el("div", { "class": "note" }, meta.name + ": " + meta.duration.toFixed(1) + " s, " + n +
      " step" + (n === 1 ? "" : "s") + (sel.summary.length ? "" : " (no tags)")), tbl);
  }

  function drawSettings() {
    var t = $("settings"), s = meta.settings;
    Object.keys(s).forEach(function (k) {
      var v = s[k], tr = el("tr");
      tr.appendChild(el("td", null, k));
      tr.appendChild(el("td", null, typeof v === "object" ? JSON.stringify(v) : String(v)));
      t.appendChild(tr);
    });
    var o = meta.options, tr = el("tr");
    tr.appendChild(el("td", null, "display (run)"));
    tr.appendChild(el("td", null, "threshold " + o.threshold + ", top-k " + o.top_k + (o.show_music_speech ? ", Speech/Music shown" : "") +
      (o.exclude.length ? ", excluded " + o.exclude.map(function (c) { return names[c]; }).join(", ") : "") +
      (o.compat ? ", --compat" : "") + (o.smooth > 1 ? ", smoothed over " + o.smooth + " steps (stored smoothed)" : "") +
      (o.per_second ? ", --per-second" : "")));
    t.appendChild(tr);
    if (meta.auto) {
      tr = el("tr");
      tr.appendChild(el("td", null, "per-class thresholds"));
      tr.appendChild(el("td", null, C + " stored with the model (the auto choice)"));
      t.appendChild(tr);
    }
    tr = el("tr");
    tr.appendChild(el("td", null, "stored"));
    tr.appendChild(el("td", null, m + " of " + C + " classes (those reaching " + meta.floor + "), probabilities in " +
      (L + 1) + " levels"));
    t.appendChild(tr);
  }

  function drawHeader() {
    var h = $("title");
    h.textContent = meta.name + " ";
    h.appendChild(el("small", null, fmtTime(meta.duration) + " · " + (meta.settings.model || "") +
      (meta.settings.backend ? " (" + meta.settings.backend + ")" : "")));
    var nav = $("links");
    meta.outputs.forEach(function (o) {
      var a = el("a", { href: o.href }, o.format);
      nav.appendChild(a);
    });
    document.title = meta.name + " · audiotagger";
  }

  function excludedChips() {
    var box = $("excluded");
    box.replaceChildren();
    state.exclude.forEach(function (c) {
      var chip = el("span", { "class": "chip" }, names[c]), b = el("button", { type: "button", title: "show again" }, "×");
      b.addEventListener("click", function () { state.exclude = state.exclude.filter(function (x) { return x !== c; }); refresh(true); });
      chip.appendChild(b); box.appendChild(chip);
    });
  }

  function findClass(text) {     // LabelSet.index: a display name or mid (any case), or an index
    var k = text.trim();
    if (/^\d+$/.test(k)) return Number(k) < C ? Number(k) : -1;
    var lk = k.toLowerCase();
    for (var c = 0; c < C; c++) if (names[c].toLowerCase() === lk || mids[c].toLowerCase() === lk) return c;
    return -1;
  }

  // ---------------------------------------------------------------- player and playhead
  function buildPlayer() {
    var box = $("player-box"), md = meta.media, kind = md.kind === "video" ? "video" : "audio";
    if (md.embedded) {
      player = el("audio", { controls: "", preload: "metadata" });
      player.src = "data:" + md.mime + ";base64," + document.getElementById("at-audio").textContent.trim();
    } else if (md.href) {
      player = el(kind, { controls: "", preload: "metadata" });
      player.src = md.href;
    }
    if (player) {
      box.appendChild(player);
      player.addEventListener("error", function () {
        box.appendChild(el("div", { "class": "note" }, "cannot play " + (md.href || md.name) + " here; pick the file:"));
        box.appendChild(picker());
      });
      ["timeupdate", "seeking", "seeked", "loadedmetadata"].forEach(function (ev) {
        player.addEventListener(ev, function () { state.time = player.currentTime; follow(); updateHeads(); });
      });
      player.addEventListener("play", animate);
    } else {
      box.appendChild(el("div", { "class": "note" }, "The media (" + md.name + ") was not found when this page was written. Pick it to play along:"));
      box.appendChild(picker());
    }
  }
  function picker() {
    var input = el("input", { type: "file", accept: "audio/*,video/*" });
    input.addEventListener("change", function () {
      if (!input.files.length) return;
      var f = input.files[0], kind = /^video\//.test(f.type) ? "video" : "audio";
      var box = $("player-box"), old = player;
      player = el(kind, { controls: "" });
      player.src = URL.createObjectURL(f);
      ["timeupdate", "seeking", "seeked"].forEach(function (ev) {
        player.addEventListener(ev, function () { state.time = player.currentTime; follow(); updateHeads(); });
      });
      player.addEventListener("play", animate);
      box.replaceChildren(player);
      if (old) old.pause();
    });
    return input;
  }
  function animate() {
    if (!player || player.paused) return;
    state.time = player.currentTime; follow(); updateHeads();
    requestAnimationFrame(animate);
  }
  function follow() {           // keep the playhead in view while playing
    if (!player || player.paused) return;
    var span = state.v1 - state.v0;
    if (state.time > state.v1 || state.time < state.v0) setView(state.time - 0.1 * span, state.time + 0.9 * span);
  }
  function seek(t) {
    t = Math.max(0, Math.min(t, end));
    state.time = t;
    if (player) player.currentTime = t;
    updateHeads();
  }
  function updateHeads() {
    [["heat", "heat-head"], ["lanes", "lane-head"]].forEach(function (p) {
      var canvas = $(p[0]), head = $(p[1]), x = xOf(canvas, state.time);
      var inside = state.time >= state.v0 && state.time <= state.v1;
      head.style.display = inside ? "block" : "none";
      head.style.left = x + "px";
    });
  }

  // ---------------------------------------------------------------- interaction
  var tip = null;
  function showTip(ev, text) {
    tip.hidden = false; tip.textContent = text;
    tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  }
  function hover(canvas, ev) {
    var rect = canvas.getBoundingClientRect(), x = ev.clientX - rect.left;
    if (x < LABEL_W) { tip.hidden = true; return; }
    var t = timeAt(canvas, ev.clientX), i = stepAt(t);
    if (canvas.id === "heat") {
      var r = Math.floor((ev.clientY - rect.top - AXIS_H) / ROW_H);
      if (r < 0 || r >= heatRows.length || i < 0 || t >= ends[i]) { tip.hidden = true; return; }
      var j = heatRows[r];
      showTip(ev, fmtTime(t, 1) + " · " + names[classes[j]] + " · " + prob(i, j).toFixed(3));
    } else {
      var e = eventAt(canvas, ev.clientX, ev.clientY);
      if (!e) { tip.hidden = true; return; }
      if (e.lane) { showTip(ev, fmtTime(t, 1) + " · " + names[e.cls]); return; }
      showTip(ev, names[e.cls] + " · " + fmtTime(e.start, 1) + "–" + fmtTime(e.end, 1) + " · mean " + e.score.toFixed(3));
    }
  }
  function bind(canvas) {
    var drag = null;
    canvas.addEventListener("pointerdown", function (ev) {
      drag = { x: ev.clientX, v0: state.v0, v1: state.v1, moved: false };
      canvas.setPointerCapture(ev.pointerId);
    });
    canvas.addEventListener("pointermove", function (ev) {
      if (drag) {
        var dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          var dt = dx / plotWidth(canvas) * (drag.v1 - drag.v0);
          setView(drag.v0 - dt, drag.v1 - dt);
        }
      }
      hover(canvas, ev);
    });
    canvas.addEventListener("pointerup", function (ev) {
      var d = drag;
      drag = null;
      if (!d || d.moved) return;
      var x = ev.clientX - canvas.getBoundingClientRect().left;
      if (x < LABEL_W) return;
      if (canvas.id === "lanes") {
        var e = eventAt(canvas, ev.clientX, ev.clientY);
        if (e && !e.lane) { seek(e.start); return; }
      }
      seek(timeAt(canvas, ev.clientX));
    });
    canvas.addEventListener("pointerleave", function () { tip.hidden = true; });
    canvas.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var span = state.v1 - state.v0;
      if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        var d = (ev.shiftKey ? ev.deltaY : ev.deltaX) / plotWidth(canvas) * span;
        setView(state.v0 + d, state.v1 + d);
      } else {
        zoom(Math.exp(ev.deltaY * 0.0015), timeAt(canvas, ev.clientX));
      }
    }, { passive: false });
  }

  var drawPending = false;
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(function () { drawPending = false; drawAll(); });
  }
  function drawAll() { drawHeat(); drawLanes(); updateHeads(); }

  function refresh(reselect) {
    var t = [performance.now()];
    if (reselect) {
      selectClasses(); t.push(performance.now());
      computeEvents(); t.push(performance.now());
      computeSummary(); excludedChips();
    }
    chooseHeatRows(); chooseLanes(); drawSummary(); t.push(performance.now());
    $("threshold-out").textContent = autoOn() ? "auto" : state.threshold.toFixed(state.threshold * 100 % 1 ? 3 : 2);
    drawHeat(); t.push(performance.now());
    drawLanes(); updateHeads(); t.push(performance.now());
    R.lastRefresh = t.slice(1).map(function (x, i) { return Math.round(x - t[i]); });
  }

  function controls() {
    var th = $("threshold"), tk = $("topk");
    th.min = 0; th.max = 1; th.step = meta.step; th.value = state.threshold;
    th.addEventListener("input", function () { state.threshold = Math.max(meta.floor, Number(th.value)); refresh(true); });
    var au = $("auto");
    $("auto-box").hidden = !meta.auto;
    au.checked = autoOn(); th.disabled = autoOn();
    au.addEventListener("change", function () { state.auto = au.checked; th.disabled = au.checked; refresh(true); });
    tk.max = meta.max_top_k; tk.value = state.topK;
    tk.addEventListener("input", function () {
      var k = Math.round(Number(tk.value));
      if (k >= 1 && k <= meta.max_top_k) { state.topK = k; refresh(true); }
    });
    var ms = $("speech-music"), cp = $("compat");
    ms.checked = state.showMS; cp.checked = state.compat;
    ms.addEventListener("change", function () { state.showMS = ms.checked; refresh(true); });
    cp.addEventListener("change", function () { state.compat = cp.checked; tk.disabled = cp.checked; refresh(true); });
    tk.disabled = state.compat;
    $("search").addEventListener("input", function () { state.search = $("search").value; refresh(false); });
    var list = $("class-list"), frag = document.createDocumentFragment();
    classes.forEach(function (c) { frag.appendChild(el("option", { value: names[c] })); });
    list.appendChild(frag);
    function addExclude() {
      var c = findClass($("exclude").value);
      if (c < 0) { $("exclude").setCustomValidity("unknown class"); $("exclude").reportValidity(); return; }
      $("exclude").setCustomValidity(""); $("exclude").value = "";
      if (state.exclude.indexOf(c) < 0) state.exclude.push(c);
      refresh(true);
    }
    $("exclude-add").addEventListener("click", addExclude);
    $("exclude").addEventListener("keydown", function (ev) { if (ev.key === "Enter") addExclude(); });
    $("rows").value = String(state.rows);
    $("rows").addEventListener("change", function () { state.rows = Number($("rows").value); refresh(false); });
    $("zoom-in").addEventListener("click", function () { zoom(0.5); });
    $("zoom-out").addEventListener("click", function () { zoom(2); });
    $("zoom-fit").addEventListener("click", function () { setView(0, end); });
    bind($("heat")); bind($("lanes"));
    window.addEventListener("resize", scheduleDraw);
    var sc = $("scale"), sctx = sc.getContext("2d");
    for (var x = 0; x < sc.width; x++) { sctx.fillStyle = colour(x / (sc.width - 1)); sctx.fillRect(x, 0, 1, sc.height); }
  }

  // ---------------------------------------------------------------- public hooks (tests, console users)
  R.state = state;
  R.events = function () {
    return sel.events.map(function (e) { return { start: e.start, end: e.end, label: names[e.cls], mid: mids[e.cls], score: e.score }; });
  };
  R.summary = function () {
    return sel.summary.map(function (s) { return { label: names[s.cls], mid: mids[s.cls], score: s.score, share: s.share }; });
  };
  R.heatRows = function () { return heatRows.map(function (j) { return names[classes[j]]; }); };
  R.lanes = function () { return lanes.map(function (c) { return names[c]; }); };
  R.clientX = function (id, t) { var c = $(id); return c.getBoundingClientRect().left + xOf(c, t); };
  R.setView = setView;
  R.view = function () { return [state.v0, state.v1]; };
  R.seek = seek;
  R.refresh = function () { refresh(true); };
  R.draw = drawAll;

  async function main() {
    var T = R.timings = { start: performance.now() };
    tip = $("tip");
    drawHeader(); drawSettings(); buildPlayer();
    T.header = performance.now();
    var buf = await inflate(document.getElementById("at-data").textContent.trim());
    T.inflate = performance.now();
    unpack(buf);
    T.unpack = performance.now();
    controls();
    setView(0, end);
    refresh(true);
    T.refresh = performance.now();
    R.ready = true;
    R.readyMs = performance.now();
    document.body.dataset.ready = "1";
  }
  main().catch(function (err) {
    document.body.insertBefore(el("pre", { "class": "note" }, "report error: " + err), document.body.firstChild);
    console.error(err);
  });
})();
