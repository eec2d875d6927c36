/* The selection panel of a pool map in a report page (no server, no network).
 *
 * Lasso or box selection lists the selected messages in a sortable table (id, text, label, language, source,
 * routed category and tier, the kind of error); a click on a point lists its nearest neighbours with their
 * similarity and label; the search box finds messages by id or text; "copy ids" and "download JSONL" export
 * the selection in the review-file format that workbench.analysis.review.read_review_file and
 * `workbench label --input` read. The map's points carry their data in customdata, the columns named by
 * layout.meta.workbench.columns (see workbench.plots.pool.MAP_COLUMNS). Every string reaches the page as
 * text (textContent), never as HTML. */
(function () {
  "use strict";
  var REVIEW_FIELDS = ["id", "text", "category", "tier", "lang", "source", "predicted", "predicted_tier", "error"];
  var COLUMNS = [["id", "id"], ["text", "text"], ["label", "category"], ["language", "lang"], ["source", "source"],
                 ["routed", "predicted"], ["routed tier", "predicted_tier"], ["wrong?", "wrong"]];
  var ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#x27;": "'"};

  /* customdata strings are HTML-escaped (for the hover) and the text is wrapped with <br>: undo both. */
  function plain(s) {
    return String(s == null ? "" : s).replace(/<br>/g, "")
      .replace(/&(?:amp|lt|gt|quot|#x27);/g, function (m) { return ENTITIES[m]; });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function readRows(gd) {
    var meta = gd.layout.meta.workbench, col = {}, rows = [], byTrace = {};
    meta.columns.forEach(function (c, i) { col[c] = i; });
    gd.data.forEach(function (trace, t) {
      var category = meta.traces[String(t)];
      if (category === undefined || !trace.customdata) return;
      byTrace[t] = [];
      Array.prototype.forEach.call(trace.customdata, function (cd, p) {
        var predicted = cd[col.predicted] >= 0 ? meta.categories[cd[col.predicted]] : "";
        var error = cd[col.error] >= 0 ? meta.errors[cd[col.error]] : "";
        var row = {
          row: cd[col.row], id: plain(cd[col.id]), text: plain(cd[col.text]), category: category,
          tier: meta.tiers[category] || "", lang: plain(cd[col.lang]), source: plain(cd[col.source]),
          predicted: predicted, predicted_tier: predicted ? meta.tiers[predicted] || "" : "", error: error,
          wrong: error && error !== "correct" ? error : (predicted && predicted !== category ? "yes" : ""),
          neighbors: cd[col.neighbors] || [], similarities: cd[col.similarities] || [], trace: t, point: p
        };
        rows[row.row] = row;
        byTrace[t][p] = row;
      });
    });
    return {rows: rows, byTrace: byTrace};
  }

  function table(columns, records, cls) {
    var t = el("table", {"class": "wb-table " + (cls || "")});
    var head = t.createTHead().insertRow();
    columns.forEach(function (c) { head.appendChild(el("th", {}, c[0])); });
    var body = t.createTBody();
    records.forEach(function (r) {
      var tr = body.insertRow();
      tr.setAttribute("data-id", r.id);
      columns.forEach(function (c) {
        var td = el("td", {"class": "wb-col-" + c[1]}, r[c[1]] === undefined ? "" : r[c[1]]);
        if (typeof r[c[1]] === "number") td.setAttribute("data-sort", String(r[c[1]]));
        tr.appendChild(td);
      });
    });
    return t;
  }

  function toJSONL(records) {
    return records.map(function (r) {
      var o = {};
      REVIEW_FIELDS.forEach(function (f) { if (r[f] !== "" && r[f] !== undefined) o[f] = r[f]; });
      return JSON.stringify(o) + "\n";
    }).join("");
  }

  function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function fallbackCopy(text) {
    var area = el("textarea", {"aria-hidden": "true", "style": "position:fixed;left:-9999px"});
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { area.remove(); }
  }

  function attach(gd) {
    if (gd.getAttribute("data-wb-explore")) return gd.wbExplore;
    gd.setAttribute("data-wb-explore", "1");
    var data = readRows(gd), selected = [];
    var panel = el("div", {"class": "wb-explore"});
    var bar = el("div", {"class": "wb-explore-bar"});
    var search = el("input", {"type": "search", "class": "wb-search", "placeholder": "find messages by id or text",
                              "aria-label": "find messages by id or text"});
    var count = el("span", {"class": "wb-count"}, "nothing selected");
    var copy = el("button", {"type": "button", "class": "wb-copy"}, "copy ids");
    var download = el("button", {"type": "button", "class": "wb-download"}, "download JSONL");
    var clear = el("button", {"type": "button", "class": "wb-clear"}, "clear");
    var status = el("span", {"class": "wb-status", "role": "status"});
    [search, count, copy, download, clear, status].forEach(function (n) { bar.appendChild(n); });
    // fixing a label where you see it: edits in the format of workbench.traffic.edits (workbench merge --edits)
    var meta = gd.layout.meta.workbench;
    var edit = el("div", {"class": "wb-explore-bar wb-edit"});
    var newLabel = el("select", {"class": "wb-new-label", "aria-label": "new label"});
    meta.categories.forEach(function (c) { newLabel.appendChild(el("option", {"value": c}, c)); });
    var note = el("input", {"type": "text", "class": "wb-note", "placeholder": "note (why)", "aria-label": "note"});
    var who = el("input", {"type": "text", "class": "wb-who", "placeholder": "your name", "aria-label": "who"});
    var relabel = el("button", {"type": "button", "class": "wb-relabel"}, "download label edits");
    [el("span", {}, "relabel the selection as"), newLabel, note, who, relabel].forEach(function (n) {
      edit.appendChild(n);
    });
    var hint = el("p", {"class": "wb-hint"}, "Lasso or box-select points (toolbar, top right) to list their messages; "
      + "click a point for its nearest neighbours; the legend hides a category (double-click: only that one).");
    var neighbours = el("div", {"class": "wb-neighbours"});
    var selection = el("div", {"class": "wb-selection wb-table-wrap"});
    [bar, edit, hint, neighbours, selection].forEach(function (n) { panel.appendChild(n); });
    gd.parentNode.insertBefore(panel, gd.nextSibling);

    function show(records) {
      selected = records;
      count.textContent = records.length ? records.length + " selected" : "nothing selected";
      status.textContent = "";
      selection.textContent = "";
      if (records.length) selection.appendChild(table(COLUMNS, records, "wb-sortable"));
      if (window.wbSortable) window.wbSortable.enhance(selection);
    }

    function highlight(records) {
      var traces = Object.keys(data.byTrace).map(Number), per = {};
      traces.forEach(function (t) { per[t] = []; });
      records.forEach(function (r) { per[r.trace].push(r.point); });
      // a search or "clear" replaces a mouse selection: its outline goes too
      if ((gd.layout.selections || []).length) window.Plotly.relayout(gd, {selections: []});
      window.Plotly.restyle(gd, {selectedpoints: traces.map(function (t) { return records.length ? per[t] : null; })},
                            traces);
    }

    function editsJSONL(records, label, by, why) {
      var when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      return records.filter(function (r) { return r.category !== label; }).map(function (r) {
        return JSON.stringify({id: r.id, old_label: r.category, new_label: label, who: by || "report", when: when,
                               note: why, text: r.text}) + "\n";
      }).join("");
    }

    function pointsToRows(points) {
      var out = [];
      (points || []).forEach(function (pt) {
        var rows = data.byTrace[pt.curveNumber];
        var r = rows && rows[pt.pointNumber];
        if (r) out.push(r);
      });
      return out;
    }

    function showNeighbours(r) {
      neighbours.textContent = "";
      if (!r) return;
      var head = el("p", {"class": "wb-neighbours-head"});
      head.appendChild(el("b", {}, "Nearest neighbours of " + r.id));
      head.appendChild(document.createTextNode(" (" + r.category + (r.wrong ? "; routed " + r.predicted + ", "
        + r.wrong : "") + "): " + r.text));
      neighbours.appendChild(head);
      var records = r.neighbors.map(function (j, k) {
        var n = data.rows[j];
        return n ? {rank: k + 1, similarity: r.similarities[k], id: n.id, category: n.category,
                    same: n.category === r.category ? "yes" : "no", text: n.text}
                 : {rank: k + 1, similarity: r.similarities[k], id: "(not on this map)", category: "", same: "",
                    text: ""};
      });
      if (!records.length) {
        neighbours.appendChild(el("p", {}, "This map carries no neighbours."));
        return;
      }
      neighbours.appendChild(table([["#", "rank"], ["similarity", "similarity"], ["id", "id"], ["label", "category"],
                                    ["same label?", "same"], ["text", "text"]], records, "wb-sortable wb-nn"));
      if (window.wbSortable) window.wbSortable.enhance(neighbours);
    }

    function find(query) {
      var q = query.trim().toLocaleLowerCase();
      if (!q) return [];
      var rows = data.rows.filter(Boolean);
      var exact = rows.filter(function (r) { return r.id.toLocaleLowerCase() === q; });
      return exact.length ? exact : rows.filter(function (r) {
        return r.id.toLocaleLowerCase().indexOf(q) >= 0 || r.text.toLocaleLowerCase().indexOf(q) >= 0;
      });
    }

    gd.on("plotly_selected", function (ev) { show(pointsToRows(ev && ev.points)); });
    gd.on("plotly_deselect", function () { show([]); });
    gd.on("plotly_click", function (ev) {
      var r = pointsToRows(ev && ev.points)[0];
      if (r) showNeighbours(r);
    });
    search.addEventListener("input", function () {
      var found = find(search.value);
      highlight(found);
      show(found);
      if (found.length === 1) showNeighbours(found[0]);
    });
    clear.addEventListener("click", function () {
      search.value = "";
      highlight([]);
      show([]);
      showNeighbours(null);
    });
    copy.addEventListener("click", function () {
      var ids = selected.map(function (r) { return r.id; });
      copyText(ids.join("\n")).then(function () {
        status.textContent = ids.length ? "copied " + ids.length + " id(s)" : "select messages first";
      });
    });
    download.addEventListener("click", function () {
      if (!selected.length) { status.textContent = "select messages first"; return; }
      var blob = new Blob([toJSONL(selected)], {type: "application/x-ndjson"});
      var a = el("a", {"href": URL.createObjectURL(blob), "download": "selection.jsonl"});
      document.body.appendChild(a);
      a.click();
      a.remove();
      status.textContent = "downloaded " + selected.length + " message(s) as selection.jsonl";
    });
    relabel.addEventListener("click", function () {
      if (!selected.length) { status.textContent = "select messages first"; return; }
      var text = editsJSONL(selected, newLabel.value, who.value.trim(), note.value.trim());
      if (!text) { status.textContent = "every selected message is labelled " + newLabel.value + " already"; return; }
      var blob = new Blob([text], {type: "application/x-ndjson"});
      var a = el("a", {"href": URL.createObjectURL(blob), "download": "label-edits.jsonl"});
      document.body.appendChild(a);
      a.click();
      a.remove();
      status.textContent = "downloaded " + (text.split("\n").length - 1) + " edit(s) as label-edits.jsonl: "
        + "workbench merge --edits label-edits.jsonl";
    });
    window.Plotly.relayout(gd, {dragmode: "lasso"});
    gd.wbExplore = {rows: data.rows, select: function (ids) {
      var want = {}; ids.forEach(function (i) { want[i] = true; });
      var found = data.rows.filter(function (r) { return r && want[r.id]; });
      highlight(found);
      show(found);
      return found.length;
    }, selected: function () { return selected.slice(); }, neighbours: showNeighbours, jsonl: function () {
      return toJSONL(selected);
    }, edits: function (label, by, why) { return editsJSONL(selected, label, by, why || ""); }};
    return gd.wbExplore;
  }

  window.wbExplore = {attach: attach, plain: plain};
})();
