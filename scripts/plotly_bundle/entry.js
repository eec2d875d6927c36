'use strict';
// plotly.js's cartesian bundle (plotly.js/lib/index-cartesian.js) plus scattergl: a report folder whose map is
// drawn with WebGL (more than WEBGL_MIN_POINTS points) gets this instead of the full plotly.js.
var Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/box'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/histogram'),
    require('plotly.js/lib/histogram2d'),
    require('plotly.js/lib/histogram2dcontour'),
    require('plotly.js/lib/contour'),
    require('plotly.js/lib/scatterternary'),
    require('plotly.js/lib/violin'),
    require('plotly.js/lib/image'),
    require('plotly.js/lib/pie'),
    require('plotly.js/lib/scattergl'),
    require('plotly.js/lib/calendars'),
]);

module.exports = Plotly;
