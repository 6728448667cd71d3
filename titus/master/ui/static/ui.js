// The web UI's behaviour: live updates from the observe stream, and actions (kill, scale)
// through the REST API with the session's CSRF header. Every text from the master is written
// with textContent, never as HTML.
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="titus-csrf"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function flash(text, bad) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = text;
    box.className = bad ? "flash bad" : "flash";
    box.hidden = false;
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function stateBadge(state) {
    return el("span", state, "st st-" + String(state).replace(/[^A-Za-z]/g, ""));
  }

  function setState(cell, state) {
    if (!cell) { return; }
    cell.textContent = "";
    cell.appendChild(stateBadge(state));
  }

  function when(ms) {
    var n = Number(ms);
    if (!ms || !isFinite(n)) { return ""; }
    return new Date(n).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  // -- actions ---------------------------------------------------------------------------
  function call(method, url, body) {
    var headers = { "Accept": "application/json" };
    if (csrf) { headers["X-Titus-CSRF"] = csrf; }
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) {
          var why = data && data.error ? data.error : ("HTTP " + response.status);
          if (data && data.problems && data.problems.length) {
            why += ": " + data.problems.map(function (p) { return p.field + " " + p.message; }).join("; ");
          }
          throw new Error(why);
        }
        return data;
      });
    });
  }

  function bindActions() {
    var kill = document.querySelector('[data-action="kill-job"]');
    if (kill) {
      kill.addEventListener("click", function () {
        var id = kill.getAttribute("data-job-id");
        if (!window.confirm("Kill every task of job " + id + "?")) { return; }
        call("DELETE", "/api/v3/jobs/" + encodeURIComponent(id)).then(function () {
          flash("Job " + id + " is being killed.");
        }, function (err) { flash("Not killed: " + err.message, true); });
      });
    }
    var killTask = document.querySelector('[data-action="kill-task"]');
    if (killTask) {
      killTask.addEventListener("click", function () {
        var id = killTask.getAttribute("data-task-id");
        if (!window.confirm("Kill task " + id + "?")) { return; }
        call("DELETE", "/api/v3/tasks/" + encodeURIComponent(id)).then(function () {
          flash("Task " + id + " is being killed.");
        }, function (err) { flash("Not killed: " + err.message, true); });
      });
    }
    var scale = document.querySelector('[data-action="scale-job"]');
    if (scale) {
      scale.addEventListener("submit", function (event) {
        event.preventDefault();
        var id = scale.getAttribute("data-job-id");
        var body = {};
        ["min", "desired", "max"].forEach(function (name) {
          var value = scale.elements[name].value;
          if (value !== "") { body[name] = Number(value); }
        });
        call("PUT", "/api/v3/jobs/" + encodeURIComponent(id) + "/instances", body).then(function () {
          flash("Job " + id + " scaled to " + JSON.stringify(body) + ".");
        }, function (err) { flash("Not scaled: " + err.message, true); });
      });
    }
  }

  // -- live updates ----------------------------------------------------------------------
  function jobRow(job, table) {
    var d = job.jobDescriptor || {};
    var owner = (d.owner || {}).teamEmail || "";
    var group = d.capacityGroup || "DEFAULT";
    var f = table.dataset;
    if ((f.filterOwner && f.filterOwner !== owner) || (f.filterGroup && f.filterGroup !== group) ||
        (f.filterState && f.filterState !== job.status.state)) {
      return null;
    }
    var row = el("tr");
    row.setAttribute("data-job-id", job.id);
    var link = el("a", job.id, "mono");
    link.href = "/ui/jobs/" + encodeURIComponent(job.id);
    var first = el("td");
    first.appendChild(link);
    row.appendChild(first);
    row.appendChild(el("td", d.applicationName || "", "name"));
    row.appendChild(el("td", owner));
    row.appendChild(el("td", group));
    row.appendChild(el("td", d.batch ? "batch" : "service"));
    var state = el("td", null, "state");
    setState(state, job.status.state);
    row.appendChild(state);
    row.appendChild(el("td", "", "tasks"));
    var accepted = (job.statusHistory && job.statusHistory.length) ? job.statusHistory[0] : job.status;
    row.appendChild(el("td", when(accepted.timestamp)));
    return row;
  }

  function onJob(job) {
    var page = document.body.dataset.page;
    if (page === "jobs") {
      var table = document.getElementById("jobs");
      var existing = table.querySelector('tr[data-job-id="' + CSS.escape(job.id) + '"]');
      if (existing) {
        setState(existing.querySelector(".state"), job.status.state);
        return;
      }
      var row = jobRow(job, table);
      if (row) {
        table.tBodies[0].insertBefore(row, table.tBodies[0].firstChild);
        var none = document.getElementById("no-jobs");
        if (none) { none.hidden = true; }
      }
    } else if (page === "job" && job.id === document.body.dataset.jobId) {
      setState(document.getElementById("job-state"), job.status.state);
    }
  }

  function onTask(task) {
    var page = document.body.dataset.page;
    if (page === "job") {
      var table = document.getElementById("tasks");
      var row = table.querySelector('tr[data-task-id="' + CSS.escape(task.id) + '"]');
      if (!row) {
        row = el("tr");
        row.setAttribute("data-task-id", task.id);
        var link = el("a", task.id, "mono");
        link.href = "/ui/tasks/" + encodeURIComponent(task.id);
        var first = el("td");
        first.appendChild(link);
        row.appendChild(first);
        row.appendChild(el("td", task.index));
        row.appendChild(el("td", null, "state"));
        row.appendChild(el("td", "", "reason"));
        row.appendChild(el("td", "", "host"));
        row.appendChild(el("td", ""));
        table.tBodies[0].appendChild(row);
      }
      setState(row.querySelector(".state"), task.status.state);
      row.querySelector(".reason").textContent = task.schedulingFailure || task.status.reasonMessage || "";
      row.querySelector(".host").textContent = task.hostId || "";
      row.cells[row.cells.length - 1].textContent = when(task.status.timestamp);
    } else if (page === "task" && task.id === document.body.dataset.taskId) {
      setState(document.getElementById("task-state"), task.status.state);
      var host = document.getElementById("task-host");
      if (host) { host.textContent = task.hostId || "—"; }
      var pending = document.getElementById("pending");
      var message = document.getElementById("pending-message");
      if (pending && message) {
        message.textContent = task.schedulingFailure || "";
        pending.hidden = !task.schedulingFailure;
      }
    }
  }

  function observe() {
    var url = document.body.dataset.observe;
    var live = document.getElementById("live");
    if (!url || !window.EventSource) { return; }
    var source = new EventSource(url);
    var ready = false;
    source.addEventListener("open", function () {
      if (live) { live.className = "live on"; live.title = "live updates on"; }
    });
    source.addEventListener("error", function () {
      if (live) { live.className = "live off"; live.title = "live updates paused"; }
    });
    source.addEventListener("snapshotEnd", function () {
      ready = true;
      document.body.setAttribute("data-live", "1");
    });
    source.addEventListener("jobUpdate", function (event) {
      if (ready) { onJob(JSON.parse(event.data)); }
    });
    source.addEventListener("taskUpdate", function (event) {
      onTask(JSON.parse(event.data));
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // -- logs ------------------------------------------------------------------------------
  function logs() {
    var box = document.getElementById("logs");
    if (!box) { return; }
    fetch(box.dataset.logs, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (text) {
      var lines = text.split("\n");
      box.textContent = lines.slice(-200).join("\n") || "(no output yet)";
    }, function (err) {
      box.textContent = "The logs could not be read: " + err.message;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindActions();
    observe();
    logs();
  });
})();
