/* Uploads each chosen file in its own request with a progress bar. A file that fails shows why;
 * when the failure was the connection or the server (not the file), a "Try again" button restarts
 * that file alone. Every request carries the page's form key: a file sent again from this page
 * (a double click, "Try again" after a lost answer) is the upload the first request made. A file
 * whose content the user already has is uploaded all the same, and its note names the earlier one. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = document.getElementById("id_files");
  var list = document.getElementById("upload-progress");
  var maxBytes = Number(form.dataset.maxBytes);
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  var requestKey = form.querySelector("[name=request_key]").value;
  var OK = /\.(mzml|mgf)(\.(gz|bz2))?$/i;  // portal.uploads.ALLOWED_SUFFIXES

  function sizeText(n) {
    if (n < 1024) return n + " bytes";
    return n < 1048576 ? (n / 1024).toFixed(0) + " KB" : (n / 1048576).toFixed(1) + " MB";
  }

  function send(file, item) {
    var bar = item.querySelector("progress"), note = item.querySelector(".note");
    var old = item.querySelector("button"); if (old) old.remove();
    item.className = "uploading"; note.textContent = "uploading…"; bar.value = 0;
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) { bar.value = e.loaded / e.total; note.textContent = Math.round(100 * e.loaded / e.total) + "%"; }
      };
      function failed(message, retryable) {
        item.className = "failed"; note.textContent = message;
        if (!retryable) { resolve(false); return; }  // the file itself is refused: retrying cannot help
        var retry = document.createElement("button"); retry.type = "button"; retry.textContent = "Try again";
        retry.onclick = function () { send(file, item).then(finishIfDone); };
        item.appendChild(retry); resolve(false);
      }
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 201) {
          bar.value = 1; item.className = body.notice ? "done duplicate" : "done";
          // A file the user already has: said here at once (the page is not reloaded while
          // another file has failed) and, by the site, on the files page after the reload.
          note.textContent = body.notice ? "uploaded. " + body.notice : "uploaded";
          resolve(true);
        }
        else failed(body.error || ("The upload failed (HTTP " + xhr.status + ")."), xhr.status >= 500 || xhr.status === 408);
      };
      xhr.onerror = function () { failed("The connection was lost during the upload.", true); };
      var data = new FormData();
      data.append("request_key", requestKey);
      data.append("file", file, file.name);
      xhr.send(data);
    });
  }

  function finishIfDone() {
    if (!list.querySelector("li:not(.done)")) window.location.reload();
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) return;
    list.innerHTML = "";
    var jobs = files.map(function (file) {
      var item = document.createElement("li");
      item.innerHTML = '<span class="name"></span> <progress max="1" value="0"></progress> <span class="note"></span>';
      item.querySelector(".name").textContent = file.name + " (" + sizeText(file.size) + ")";
      list.appendChild(item);
      if (!OK.test(file.name)) {
        item.className = "failed";
        item.querySelector(".note").textContent = "'" + file.name + "' is not an mzML or MGF file (.mzML, .mzML.gz, .mzML.bz2, .mgf, .mgf.gz, .mgf.bz2).";
        return null;
      }
      if (file.size > maxBytes) {
        item.className = "failed";
        item.querySelector(".note").textContent = "'" + file.name + "' is larger than the limit of " + sizeText(maxBytes) + ".";
        return null;
      }
      return { file: file, item: item };
    }).filter(Boolean);
    // One file at a time keeps the server's temporary space small.
    jobs.reduce(function (p, j) { return p.then(function () { return send(j.file, j.item); }); }, Promise.resolve())
      .then(finishIfDone);
  });
})();
