/* Live status: polls the site's JSON endpoint every few seconds until every analysis shown has
 * finished. On the detail page it reloads once the analysis finishes, to show results or the error. */
(function () {
  "use strict";
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var table = document.getElementById("analyses-table");
  var detail = document.getElementById("analysis");
  function getJSON(url) { return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }); }
  function setStatus(el, status) { el.textContent = status; el.className = "status status-" + status; }

  if (detail && FINISHED.indexOf(detail.dataset.status) < 0) {
    var tick = function () {
      getJSON(detail.dataset.statusUrl).then(function (a) {
        if (!a.status) return setTimeout(tick, 5000);
        setStatus(detail.querySelector("[data-status]"), a.status);
        if (a.finished) window.location.reload(); else setTimeout(tick, 2000);
      }).catch(function () { setTimeout(tick, 5000); });
    };
    setTimeout(tick, 2000);
  }
  if (table) {
    var poll = function () {
      getJSON(table.dataset.statusUrl).then(function (d) {
        var pending = false;
        (d.analyses || []).forEach(function (a) {
          var row = table.querySelector('tr[data-analysis-id="' + a.id + '"]');
          if (!row) return;
          setStatus(row.querySelector("[data-status]"), a.status);
          if (a.error && !row.querySelector("[data-error]")) {
            var e = document.createElement("span"); e.className = "error"; e.dataset.error = ""; e.textContent = a.error;
            row.querySelector("[data-status]").after(e);
          }
          if (!a.finished) pending = true;
        });
        if (pending) setTimeout(poll, 3000);
      }).catch(function () { setTimeout(poll, 6000); });
    };
    var any = Array.prototype.some.call(table.querySelectorAll("[data-status]"), function (el) {
      return FINISHED.indexOf(el.textContent.trim()) < 0;
    });
    if (any) setTimeout(poll, 3000);
  }
})();
