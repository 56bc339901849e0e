/* audiotagger folder index: sortable table of report pages with a "files where CLASS is shown" filter. */
(function () {
  "use strict";
  var files = JSON.parse(document.getElementById("at-files").textContent);
  var state = { key: "name", dir: 1, filter: "" };
  var R = window.audiotaggerIndex = { files: files, state: state };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmtTime(t) {
    var s = Math.round(t), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return h + ":" + (m < 10 ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r;
  }

  // class -> shown seconds, lower-cased keys; a filter equal to a class name matches it exactly,
  // anything else matches the classes whose name contains it
  var allClasses = new Map();
  files.forEach(function (f) {
    f.shownLower = new Map();
    Object.keys(f.shown).forEach(function (c) { f.shownLower.set(c.toLowerCase(), f.shown[c]); allClasses.set(c.toLowerCase(), c); });
  });
  var list = document.getElementById("classes");
  Array.from(allClasses.values()).sort().forEach(function (c) { list.appendChild(el("option", { value: c })); });

  function matchSeconds(f) {    // seconds the filtered class(es) are shown in file f; null = no match
    var term = state.filter.trim().toLowerCase();
    if (!term) return 0;
    if (allClasses.has(term)) return f.shownLower.has(term) ? f.shownLower.get(term) : null;
    var total = null;
    f.shownLower.forEach(function (sec, c) { if (c.indexOf(term) >= 0) total = (total || 0) + sec; });
    return total;
  }
  function sortValue(f) {
    switch (state.key) {
      case "duration": return f.duration;
      case "model": return f.model.toLowerCase();
      case "top": return f.top.length ? f.top[0][0].toLowerCase() : "";
      case "match": return matchSeconds(f) || 0;
      default: return (f.dir + "/" + f.name).toLowerCase();
    }
  }
  function visible() {
    var rows = files.filter(function (f) { return matchSeconds(f) !== null; });
    rows.sort(function (a, b) {
      var x = sortValue(a), y = sortValue(b);
      return (x < y ? -1 : x > y ? 1 : 0) * state.dir || (a.href < b.href ? -1 : 1);
    });
    return rows;
  }
  function render() {
    var body = document.querySelector("#files tbody"), rows = visible(), term = state.filter.trim().toLowerCase();
    body.replaceChildren();
    rows.forEach(function (f) {
      var tr = el("tr"), td = el("td");
      if (f.dir) td.appendChild(el("span", { "class": "dir" }, f.dir + "/"));
      td.appendChild(el("a", { href: f.href }, f.name));
      tr.appendChild(td);
      tr.appendChild(el("td", { "class": "num" }, fmtTime(f.duration)));
      tr.appendChild(el("td", null, f.model));
      td = el("td");
      f.top.forEach(function (t) {
        var hit = term && t[0].toLowerCase().indexOf(term) >= 0;
        td.appendChild(el("span", { "class": hit ? "chip hit" : "chip", title: "mean " + t[1] }, t[0]));
      });
      tr.appendChild(td);
      var sec = matchSeconds(f);
      tr.appendChild(el("td", { "class": "num" }, term ? fmtTime(sec) : String(Object.keys(f.shown).length) + " classes"));
      td = el("td", { "class": "outs" });
      td.appendChild(el("a", { href: f.href }, "page"));
      f.outputs.forEach(function (o) { td.appendChild(el("a", { href: o.href }, o.format)); });
      tr.appendChild(td);
      tr.dataset.name = f.name;
      body.appendChild(tr);
    });
    document.getElementById("count").textContent = rows.length + " of " + files.length + " files";
    document.getElementById("match-head").textContent = term ? "shown for" : "shown";
    document.querySelectorAll("th.sortable").forEach(function (th) {
      th.classList.toggle("asc", th.dataset.key === state.key && state.dir > 0);
      th.classList.toggle("desc", th.dataset.key === state.key && state.dir < 0);
    });
  }
  document.querySelectorAll("th.sortable").forEach(function (th) {
    th.addEventListener("click", function () {
      if (state.key === th.dataset.key) state.dir = -state.dir; else { state.key = th.dataset.key; state.dir = 1; }
      render();
    });
  });
  var input = document.getElementById("class-filter");
  input.addEventListener("input", function () { state.filter = input.value; render(); });
  R.visible = function () { return visible().map(function (f) { return f.name; }); };
  render();
  R.ready = true;
})();
