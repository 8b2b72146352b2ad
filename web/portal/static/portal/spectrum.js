/* The spectrum page: profile trace, centroids coloured by the charge of their isotope envelope. */
(function () {
  "use strict";
  var box = document.getElementById("spectrum-plot");
  if (!box) return;
  fetch(box.dataset.url, { credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
    .then(function (s) {
      var layers = [];
      if (s.profile && s.profile.mz && s.profile.mz.length) {
        layers.push({ kind: "line", x: s.profile.mz, y: s.profile.intensity, color: "#b0b7c3" });
      }
      var c = s.centroids || { mz: [], intensity: [] };
      var charges = c.charge || [];
      var envs = c.envelope_id || [];
      var colors = c.mz.map(function (_, i) {
        return envs[i] === null || envs[i] === undefined ? MzPlot.chargeColor(null) : MzPlot.chargeColor(charges[i]);
      });
      layers.push({ kind: "sticks", x: c.mz, y: c.intensity, colors: colors });
      var canvas = document.getElementById("spectrum-canvas");
      MzPlot.create(canvas, { layers: layers, xLabel: "m/z" });
      var seen = {};
      charges.forEach(function (z, i) { if (z && envs[i] !== null && envs[i] !== undefined) seen[z] = true; });
      var legend = document.getElementById("spectrum-legend");
      var zs = Object.keys(seen).map(Number).sort(function (a, b) { return a - b; });
      legend.innerHTML = "";
      zs.concat([0]).forEach(function (z) {
        var item = document.createElement("span");
        item.className = "legend-item";
        item.innerHTML = '<i style="background:' + MzPlot.chargeColor(z || null) + '"></i>';
        item.appendChild(document.createTextNode(z ? "z = " + z : "no envelope"));
        legend.appendChild(item);
      });
      box.dataset.ready = "1";
    })
    .catch(function (e) {
      box.insertAdjacentHTML("afterbegin", '<p class="error" role="alert"></p>');
      box.querySelector(".error").textContent = "The spectrum could not be loaded: " + e.message;
    });
})();
