/* Draw the plotly figures of a report page. A figure is a <div class="wb-figure"> followed by its JSON
 * (<script type="application/json" class="wb-figure-data">), or a <div data-figure="NAME"> whose data a
 * figures/NAME.js file registered in window.WB_FIGURES (the index and the notebook pages share that file).
 * Figures without a template get the default one (assets/template.js: one copy per folder, not one per
 * figure). Pool maps get the selection panel of explore.js. Needs plotly.min.js loaded first; no network. */
(function () {
  "use strict";
  var registry = window.WB_FIGURES = window.WB_FIGURES || {};
  var DEFAULT_HEIGHT = 420;  // px, as workbench.plots.FIGURE_HEIGHT

  function figureOf(div) {
    var name = div.getAttribute("data-figure");
    if (name) return registry[name] || null;
    var next = div.nextElementSibling;
    return next && next.classList.contains("wb-figure-data") ? JSON.parse(next.textContent) : null;
  }

  function render(div) {
    div.setAttribute("data-rendered", "1");
    var fig = figureOf(div);
    if (!fig || !window.Plotly) {
      div.className += " wb-missing";
      div.textContent = !window.Plotly ? "plotly.js did not load (assets/plotly.min.js)"
        : "figure data missing: " + (div.getAttribute("data-figure") || "inline");
      return Promise.resolve(null);
    }
    var layout = fig.layout || {};
    if (!layout.template && window.WB_TEMPLATE) layout.template = window.WB_TEMPLATE;  // assets/template.js
    // a figure without a height would take its box's (a bare div: 100 px); JupyterLab draws such figures 360 px high
    if (!layout.height) layout.height = DEFAULT_HEIGHT;
    return window.Plotly.newPlot(div, fig.data, layout, {responsive: true, displaylogo: false}).then(function (gd) {
      var meta = (layout.meta && layout.meta.workbench) || {};
      if (meta.kind === "pool-map" && window.wbExplore) window.wbExplore.attach(gd);
      return gd;
    });
  }

  function renderAll() {
    var divs = document.querySelectorAll("div.wb-figure:not([data-rendered])");
    return Promise.all(Array.prototype.map.call(divs, render)).then(function () {
      document.documentElement.setAttribute("data-wb-figures", String(divs.length));
    });
  }

  window.wbFigures = {render: renderAll};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderAll);
  else renderAll();
})();
