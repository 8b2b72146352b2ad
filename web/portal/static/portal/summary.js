/* The analysis page's summary charts: spectra per MS level, TIC over RT, peaks/features per spectrum.
 * With several input files every chart is of the file chosen on the page (summary.json's rows are
 * that file's); with one, the spectra per level are the analysis's own counts. */
(function () {
  "use strict";
  var box = document.getElementById("analysis");
  var levelsEl = document.getElementById("levels-data");
  if (!box || !levelsEl) return;
  function drawLevels(levels) {
    var keys = Object.keys(levels).sort(function (a, b) { return a - b; });
    var canvas = document.getElementById("chart-levels");
    canvas.dataset.levels = JSON.stringify(levels);
    MzPlot.create(canvas, {
      layers: [{ kind: "bars", x: keys, labels: keys.map(function (k) { return "MS" + k; }), y: keys.map(function (k) { return levels[k]; }) }]
    });
  }
  var perInput = !!box.dataset.perInput;
  if (!perInput) drawLevels(JSON.parse(levelsEl.textContent) || {});
  fetch(box.dataset.summaryUrl, { credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
    .then(function (d) {
      if (perInput && !d.total) {
        var none = document.createElement("p");
        none.className = "error"; none.id = "no-spectra"; none.textContent = "No spectra in this file: nothing to chart.";
        document.querySelector(".charts").replaceWith(none);
        return;
      }
      if (perInput) drawLevels(d.spectra_per_level || {});
      // Spectra whose file gives no retention time (null rt_seconds) have no place on the time
      // axis: left out, and counted in a note (null / 60 would have put them at 0).
      var ms1 = { x: [], y: [] }, all = { x: [], y: [] }, withoutRt = 0;
      d.rt_seconds.forEach(function (rt, i) {
        if (rt === null || rt === undefined) { withoutRt += 1; return; }
        all.x.push(rt / 60); all.y.push(d.tic[i]);
        if (d.ms_level[i] === 1) { ms1.x.push(rt / 60); ms1.y.push(d.tic[i]); }
      });
      var tic = ms1.x.length ? ms1 : all;
      var ticCanvas = document.getElementById("chart-tic");
      ticCanvas.dataset.points = String(tic.x.length);
      MzPlot.create(ticCanvas, { layers: [{ kind: "line", x: tic.x, y: tic.y }], xLabel: "retention time (min)" });
      if (withoutRt) {
        var noRt = document.createElement("p");
        noRt.className = "help"; noRt.id = "charts-no-rt";
        noRt.textContent = withoutRt.toLocaleString("en") + (withoutRt === 1 ? " spectrum has" : " spectra have") +
          " no retention time in the file and " + (withoutRt === 1 ? "is" : "are") + " left out of the TIC chart.";
        document.querySelector(".charts").after(noRt);
      }
      MzPlot.create(document.getElementById("chart-counts"), {
        layers: [
          { kind: "sticks", x: d.spectrum_index, y: d.n_peaks, color: "#1f5fa8", width: 1 },
          { kind: "sticks", x: d.spectrum_index, y: d.n_features, color: "#e67e22", width: 1 }
        ],
        xLabel: "spectrum index (blue: peaks, orange: features)",
        integerX: true
      });
      if (d.truncated) {
        var note = document.createElement("p");
        note.className = "help"; note.id = "charts-truncated";
        note.textContent = "The charts show the first " + d.spectrum_index.length.toLocaleString("en") + " of " +
          d.total.toLocaleString("en") + " spectra; the downloads hold them all.";
        document.querySelector(".charts").after(note);
      }
      box.dataset.chartsReady = "1";
    })
    .catch(function (e) {
      var p = document.createElement("p");
      p.className = "error"; p.textContent = "The charts could not be loaded: " + e.message;
      document.querySelector(".charts").appendChild(p);
    });
})();
