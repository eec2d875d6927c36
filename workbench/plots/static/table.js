/* Sortable tables: a click on a column header sorts by it (again: the other way).
 * Works on every <table class="wb-sortable"> of the page; cells may carry data-sort (a number) to sort by.
 * No library, no network. Runs once per table however often the script is included. */
(function () {
  "use strict";
  function value(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    var num = Number(raw);
    return raw !== "" && !isNaN(num) ? {num: num} : {text: raw.toLocaleLowerCase()};
  }
  function compare(a, b) {
    if ("num" in a && "num" in b) return a.num - b.num;
    if ("num" in a) return -1;
    if ("num" in b) return 1;
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }
  function sortTable(table, col, descending) {
    var body = table.tBodies[0];
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) { return {row: row, i: i, v: value(row.cells[col] || row.cells[0])}; });
    keyed.sort(function (a, b) { return (descending ? -1 : 1) * compare(a.v, b.v) || a.i - b.i; });
    keyed.forEach(function (k) { body.appendChild(k.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("aria-sort", i === col ? (descending ? "descending" : "ascending") : "none");
    });
  }
  function enhance(root) {
    var tables = (root || document).querySelectorAll("table.wb-sortable:not([data-wb-sortable])");
    Array.prototype.forEach.call(tables, function (table) {
      table.setAttribute("data-wb-sortable", "1");
      if (!table.tHead) return;
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        th.title = "sort by this column";
        th.setAttribute("aria-sort", "none");
        th.addEventListener("click", function () {
          sortTable(table, col, th.getAttribute("aria-sort") === "ascending");
        });
      });
    });
  }
  window.wbSortable = {enhance: enhance, sort: sortTable};
  enhance(document);
})();
