/* A small canvas plotting library for mzforge's pages (no third-party code, nothing from a CDN).
 * MzPlot.create(canvas, {layers, xLabel, yLabel}) draws layers of kind "line", "sticks" or "bars"
 * on shared axes. Drag horizontally to zoom into an x range; double-click to zoom out. The y axis
 * rescales to what is visible. */
(function () {
  "use strict";
  var PAD = { left: 64, right: 14, top: 12, bottom: 40 };

  function niceStep(span, count) {
    var raw = span / Math.max(1, count), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  }
  function fmt(v) {
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(1);
    return Math.round(v * 1000) / 1000 + "";
  }

  function Plot(canvas, opts) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.opts = opts;
    this.layers = opts.layers || [];
    var ext = this.extent();
    this.full = ext;
    this.x0 = ext[0];
    this.x1 = ext[1];
    this.drag = null;
    this.attach();
    this.draw();
  }

  Plot.prototype.extent = function () {
    var lo = Infinity, hi = -Infinity;
    this.layers.forEach(function (l) {
      if (l.kind === "bars") { lo = -0.5; hi = Math.max(hi, l.x.length - 0.5); return; }
      for (var i = 0; i < l.x.length; i++) { if (l.x[i] < lo) lo = l.x[i]; if (l.x[i] > hi) hi = l.x[i]; }
    });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    var m = this.layers.some(function (l) { return l.kind === "sticks"; }) ? (hi - lo) * 0.02 : 0;
    return [lo - m, hi + m];
  };

  Plot.prototype.yMax = function () {
    var x0 = this.x0, x1 = this.x1, hi = 0;
    this.layers.forEach(function (l) {
      for (var i = 0; i < l.y.length; i++) {
        var x = l.kind === "bars" ? i : l.x[i];
        if (x >= x0 && x <= x1 && l.y[i] > hi) hi = l.y[i];
      }
    });
    var bars = this.layers.some(function (l) { return l.kind === "bars"; });
    return hi > 0 ? hi * (bars ? 1.15 : 1.05) : 1;
  };

  Plot.prototype.draw = function () {
    var c = this.ctx, w = this.canvas.width, h = this.canvas.height, self = this;
    var pw = w - PAD.left - PAD.right, ph = h - PAD.top - PAD.bottom;
    var x0 = this.x0, x1 = this.x1, ymax = this.yMax();
    var sx = function (x) { return PAD.left + (x - x0) / (x1 - x0) * pw; };
    var sy = function (y) { return PAD.top + ph - y / ymax * ph; };
    c.clearRect(0, 0, w, h);
    c.font = "11px sans-serif";
    c.strokeStyle = "#999"; c.fillStyle = "#333"; c.lineWidth = 1;
    c.beginPath(); c.moveTo(PAD.left, PAD.top); c.lineTo(PAD.left, PAD.top + ph); c.lineTo(PAD.left + pw, PAD.top + ph); c.stroke();
    c.textAlign = "right"; c.textBaseline = "middle";
    var ys = niceStep(ymax, 5);
    for (var y = 0; y <= ymax; y += ys) { c.fillText(fmt(y), PAD.left - 4, sy(y)); }
    c.textAlign = "center"; c.textBaseline = "top";
    var bars = this.layers.filter(function (l) { return l.kind === "bars"; })[0];
    if (bars) {
      bars.labels.forEach(function (lab, i) { c.fillText(lab, sx(i), PAD.top + ph + 4); });
    } else {
      var xs = niceStep(x1 - x0, 8);
      if (this.opts.integerX) xs = Math.max(1, Math.round(xs));
      for (var x = Math.ceil(x0 / xs) * xs; x <= x1; x += xs) { c.fillText(fmt(x), sx(x), PAD.top + ph + 4); }
    }
    if (this.opts.xLabel) c.fillText(this.opts.xLabel, PAD.left + pw / 2, h - 14);
    c.save(); c.beginPath(); c.rect(PAD.left, PAD.top, pw, ph); c.clip();
    this.layers.forEach(function (l) {
      var i;
      if (l.kind === "line") {
        c.strokeStyle = l.color || "#1f5fa8"; c.lineWidth = 1; c.beginPath();
        var started = false;
        for (i = 0; i < l.x.length; i++) {
          if (l.y[i] === null || l.y[i] === undefined) continue;
          if (!started) { c.moveTo(sx(l.x[i]), sy(l.y[i])); started = true; } else c.lineTo(sx(l.x[i]), sy(l.y[i]));
        }
        c.stroke();
        if (l.x.length < 60) {  // few points: mark each, so a single point still shows
          c.fillStyle = l.color || "#1f5fa8";
          for (i = 0; i < l.x.length; i++) {
            if (l.y[i] === null || l.y[i] === undefined) continue;
            c.beginPath(); c.arc(sx(l.x[i]), sy(l.y[i]), 3, 0, 2 * Math.PI); c.fill();
          }
        }
      } else if (l.kind === "sticks") {
        c.lineWidth = l.width || 1.5;
        for (i = 0; i < l.x.length; i++) {
          if (l.x[i] < x0 || l.x[i] > x1) continue;
          c.strokeStyle = l.colors ? l.colors[i] : (l.color || "#c0392b");
          c.beginPath(); c.moveTo(sx(l.x[i]), sy(0)); c.lineTo(sx(l.x[i]), sy(l.y[i])); c.stroke();
        }
      } else if (l.kind === "bars") {
        var bw = pw / (x1 - x0) * 0.6;
        c.fillStyle = l.color || "#1f5fa8";
        for (i = 0; i < l.y.length; i++) {
          c.fillRect(sx(i) - bw / 2, sy(l.y[i]), bw, sy(0) - sy(l.y[i]));
          c.fillStyle = "#333"; c.textAlign = "center"; c.textBaseline = "bottom";
          c.fillText(String(l.y[i]), sx(i), sy(l.y[i]) - 2);
          c.fillStyle = l.color || "#1f5fa8";
        }
      }
    });
    c.restore();
    if (this.drag && this.drag.x !== this.drag.start) {
      c.fillStyle = "rgba(31,95,168,0.15)";
      c.fillRect(Math.min(this.drag.start, this.drag.x), PAD.top, Math.abs(this.drag.x - this.drag.start), ph);
    }
    this.canvas.dataset.x0 = String(x0);
    this.canvas.dataset.x1 = String(x1);
    this.canvas.dataset.drawn = "1";
    this.sx = sx;
  };

  Plot.prototype.attach = function () {
    var self = this, cv = this.canvas;
    if (this.layers.some(function (l) { return l.kind === "bars"; })) return;
    function pos(e) { var r = cv.getBoundingClientRect(); return (e.clientX - r.left) * cv.width / r.width; }
    cv.addEventListener("mousedown", function (e) { self.drag = { start: pos(e), x: pos(e) }; });
    cv.addEventListener("mousemove", function (e) { if (self.drag) { self.drag.x = pos(e); self.draw(); } });
    window.addEventListener("mouseup", function () {
      if (!self.drag) return;
      var a = Math.min(self.drag.start, self.drag.x), b = Math.max(self.drag.start, self.drag.x);
      self.drag = null;
      if (b - a > 4) self.zoom(self.toX(a), self.toX(b)); else self.draw();
    });
    cv.addEventListener("dblclick", function () { self.zoom(self.full[0], self.full[1]); });
  };
  Plot.prototype.toX = function (px) {
    var pw = this.canvas.width - PAD.left - PAD.right;
    return this.x0 + (px - PAD.left) / pw * (this.x1 - this.x0);
  };
  Plot.prototype.zoom = function (a, b) {
    this.x0 = Math.max(this.full[0], a); this.x1 = Math.min(this.full[1], b);
    if (this.x1 <= this.x0) { this.x0 = this.full[0]; this.x1 = this.full[1]; }
    this.draw();
  };

  var CHARGE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  function chargeColor(z) {
    if (z === null || z === undefined || z === 0) return "#9a9a9a";
    return CHARGE_COLORS[(Math.abs(z) - 1) % CHARGE_COLORS.length];
  }

  window.MzPlot = {
    create: function (canvas, opts) { return new Plot(canvas, opts); },
    chargeColor: chargeColor
  };
})();
