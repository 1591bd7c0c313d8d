/* canaryfleet charts: draws each chart of the page's JSON data block with uPlot.
   Weights are steps, samples are points (no line between them), phase marks and limits are
   drawn inside the plot. Without script, the page still shows every number in words. */
(function () {
  "use strict";
  var data = document.getElementById("chart-data");
  if (!data || typeof uPlot === "undefined") return;
  var charts = JSON.parse(data.textContent);
  var COLORS = { canary: "#d9480f", live: "#1864ab", weight: "#5f3dc4" };
  var MARKS = { phase: "#495057", alarm: "#c92a2a", decision: "#2b8a3e" };
  // Whole seconds and round minutes and hours: a tick never falls between two clock labels.
  var INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  function clock(seconds, withSeconds) {
    var d = new Date(seconds * 1000);
    var text = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    return withSeconds ? text + ":" + pad(d.getUTCSeconds()) : text;
  }

  function seriesOptions(s) {
    var color = COLORS[s.role];
    if (s.draw === "steps") {
      return { label: s.label, stroke: color, width: 2, fill: color + "22",
               paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } };
    }
    // Points only: live a hollow ring, canary a filled dot drawn on top, so equal values show both.
    var live = s.role === "live";
    return { label: s.label, stroke: color, width: live ? 2 : 1, fill: live ? "#ffffff00" : color,
             paths: function () { return null; },
             points: { show: true, size: live ? 11 : 6, width: live ? 2 : 1,
                       stroke: color, fill: live ? "#fff0" : color } };
  }

  function placeMarks(u, chart, box) {
    var over = u.over;
    over.querySelectorAll(".cf-mark").forEach(function (el) { el.remove(); });
    var width = over.clientWidth;
    var wide = width >= 560;
    var rows = [[], [], []];  // the label intervals already taken, per row (the headroom holds 3)
    chart.marks.forEach(function (mark, i) {
      var x = Math.round(u.valToPos(mark.at, "x"));
      var line = document.createElement("div");
      line.className = "cf-mark cf-mark-line cf-" + mark.kind;
      line.style.left = x + "px";
      line.style.borderLeftColor = MARKS[mark.kind];
      over.appendChild(line);
      var label = document.createElement("span");
      label.className = "cf-mark cf-mark-label cf-" + mark.kind;
      label.textContent = (i + 1) + (wide ? " " + mark.label : "");
      label.title = mark.label;
      label.style.color = MARKS[mark.kind];
      over.appendChild(label);
      // Beside its line, on whichever side has room, in the first row where it overlaps no
      // other label: always inside the plot.
      var w = label.offsetWidth;
      var left = Math.max(0, x + 3 + w <= width ? x + 3 : x - 3 - w);
      var row = 0;
      for (var r = 0; r < rows.length; r++) {
        var free = rows[r].every(function (b) { return left + w + 2 <= b[0] || left >= b[1] + 2; });
        if (free) { row = r; break; }
        row = r === rows.length - 1 ? i % rows.length : row;
      }
      rows[row].push([left, left + w]);
      label.style.left = left + "px";
      label.style.top = (2 + row * 14) + "px";
    });
    box.dataset.marks = String(chart.marks.length);
  }

  function drawThresholds(u, chart) {
    var ctx = u.ctx;
    ctx.save();
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.strokeStyle = "#c92a2a";
    ctx.fillStyle = "#c92a2a";
    ctx.font = 11 * devicePixelRatio + "px system-ui, sans-serif";
    ctx.textAlign = "left";
    chart.thresholds.forEach(function (t) {
      var y = Math.round(u.valToPos(t.value, "y", true));
      ctx.beginPath();
      ctx.moveTo(u.bbox.left, y);
      ctx.lineTo(u.bbox.left + u.bbox.width, y);
      ctx.stroke();
      ctx.fillText(t.label, u.bbox.left + 4 * devicePixelRatio, y - 3 * devicePixelRatio);
    });
    ctx.restore();
  }

  function draw(chart) {
    var box = document.querySelector("#" + chart.id + " .cf-plot");
    if (!box) return;
    var x = [];
    chart.series.forEach(function (s) { x = x.concat(s.x); });
    var tables = chart.series.map(function (s) { return [s.x, s.y]; });
    var aligned = tables.length ? uPlot.join(tables) : [[]];
    var span = chart.x_max - chart.x_min;
    var labels = [];
    var opts = {
      width: Math.max(200, box.clientWidth),
      height: box.clientWidth < 560 ? 170 : 200,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: function () { return [chart.x_min, chart.x_max]; } },
        y: { range: function () { return [0, chart.y_max]; } },
      },
      axes: [
        { label: "UTC", labelSize: 18, size: 30, font: "11px system-ui, sans-serif", stroke: "#495057",
          grid: { stroke: "#e9ecef", width: 1 }, space: 70, incrs: INCRS,
          values: function (u, splits) {
            var out = splits.map(function (v) { return clock(v, span < 600 || v % 60 !== 0); });
            labels = out;
            box.dataset.xLabels = out.join("|");
            return out;
          } },
        { size: 60, font: "11px system-ui, sans-serif", stroke: "#495057", grid: { stroke: "#e9ecef", width: 1 },
          values: function (u, splits) {
            return splits.map(function (v) { return (+v.toFixed(2)) + chart.unit; });
          } },
      ],
      series: [{ label: "time", value: function (u, v) { return v == null ? "-" : clock(v, true); } }]
        .concat(chart.series.map(seriesOptions)),
      hooks: {
        draw: [function (u) { drawThresholds(u, chart); placeMarks(u, chart, box); }],
      },
    };
    var plot = new uPlot(opts, aligned, box);
    box.dataset.drawn = "true";
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () {
        var w = Math.max(200, box.clientWidth);
        if (Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height: w < 560 ? 170 : 200 });
      }).observe(box);
    }
    return labels;
  }

  charts.forEach(draw);
})();
