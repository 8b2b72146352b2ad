/* The analysis page's summary charts: spectra per MS level, TIC over RT, peaks/features per spectrum. */
(function () {
  "use strict";
  var box = document.getElementById("analysis");
  var levelsEl = document.getElementById("levels-data");
  if (!box || !levelsEl) return;
  var levels = JSON.parse(levelsEl.textContent) || {};
  var keys = Object.keys(levels).sort(function (a, b) { return a - b; });
  MzPlot.create(document.getElementById("chart-levels"), {
    layers: [{ kind: "bars", x: keys, labels: keys.map(function (k) { return "MS" + k; }), y: keys.map(function (k) { return levels[k]; }) }]
  });
  fetch(box.dataset.summaryUrl, { credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
    .then(function (d) {
      var ms1 = { x: [], y: [] };
      d.rt_seconds.forEach(function (rt, i) { if (d.ms_level[i] === 1) { ms1.x.push(rt / 60); ms1.y.push(d.tic[i]); } });
      var tic = ms1.x.length ? ms1 : { x: d.rt_seconds.map(function (r) { return r / 60; }), y: d.tic };
      MzPlot.create(document.getElementById("chart-tic"), { layers: [{ kind: "line", x: tic.x, y: tic.y }], xLabel: "retention time (min)" });
      MzPlot.create(document.getElementById("chart-counts"), {
        layers: [
          { kind: "sticks", x: d.spectrum_index, y: d.n_peaks, color: "#1f5fa8", width: 1 },
          { kind: "sticks", x: d.spectrum_index, y: d.n_features, color: "#e67e22", width: 1 }
        ],
        xLabel: "spectrum index (blue: peaks, orange: features)",
        integerX: true
      });
      box.dataset.chartsReady = "1";
    })
    .catch(function (e) {
      var p = document.createElement("p");
      p.className = "error"; p.textContent = "The charts could not be loaded: " + e.message;
      document.querySelector(".charts").appendChild(p);
    });
})();
