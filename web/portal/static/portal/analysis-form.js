/* The new-analysis form: custom fields show only for "Custom parameters"; picking a preset
 * sets them to the engine's defaults with the preset's values on top (never what an earlier
 * preset left there), so a preset can be a starting point for custom values. */
(function () {
  "use strict";
  var form = document.getElementById("analysis-form");
  if (!form) return;
  var presets = JSON.parse(form.dataset.presets || "{}");
  var defaults = JSON.parse(form.dataset.defaults || "{}");
  var custom = document.getElementById("custom-params");
  function fill(values) {
    Object.keys(values).forEach(function (k) {
      var el = form.elements["p_" + k], v = values[k];
      if (!el) return;
      if (el.type === "checkbox") el.checked = !!v;
      else if (Array.isArray(v)) el.value = v.join(k.indexOf("range") >= 0 ? "-" : ",");
      else el.value = v === null ? "" : v;
    });
  }
  function update() {
    var chosen = form.querySelector("input[name=preset]:checked");
    var name = chosen ? chosen.value : "custom";
    custom.hidden = name !== "custom";
    var summary = document.getElementById("preset-summary");
    if (name !== "custom" && presets[name]) {
      fill(Object.assign({}, defaults, presets[name]));
      summary.textContent = "Sets " + Object.keys(presets[name]).map(function (k) {
        var v = presets[name][k];
        return k.replace(/_/g, " ") + " = " + (Array.isArray(v) ? v.join(k.indexOf("range") >= 0 ? "-" : ",") : v);
      }).join("; ") + "; everything else stays at the engine's defaults. Choose Custom to change any of them.";
    } else {
      summary.textContent = "";
    }
  }
  Array.prototype.forEach.call(form.querySelectorAll("input[name=preset]"), function (r) { r.addEventListener("change", update); });
  update();
})();
