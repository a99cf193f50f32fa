// BrokeForge: progressive enhancement only. Every page works without this script;
// it adds confirmation prompts and live job progress over server-sent events.
(function () {
  "use strict";

  // Ask before destructive actions (forms with data-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function text(id, value) {
    var element = document.getElementById(id);
    if (element) { element.textContent = value; }
  }

  function setupProgress() {
    var section = document.getElementById("progress");
    if (!section || !window.EventSource) { return; }
    var state = section.getAttribute("data-state");
    if (state === "succeeded" || state === "failed" || state === "cancelled") { return; }
    var jobId = section.getAttribute("data-job-id");
    var after = section.getAttribute("data-last-event-id") || "0";
    var run = Number(section.getAttribute("data-run") || "0");
    var list = document.getElementById("milestones");
    var fill = document.getElementById("progress-fill");
    var bar = fill ? fill.parentElement : null;

    function milestoneItem(step) {
      var item = list.querySelector('li[data-step="' + step + '"]');
      if (!item) {
        item = document.createElement("li");
        item.className = "milestone";
        item.setAttribute("data-step", String(step));
        var icon = document.createElement("span");
        icon.className = "milestone-icon";
        icon.setAttribute("aria-hidden", "true");
        var label = document.createElement("span");
        label.className = "milestone-label";
        var status = document.createElement("span");
        status.className = "milestone-status";
        item.appendChild(icon); item.appendChild(label); item.appendChild(status);
        list.appendChild(item);
      }
      return item;
    }

    function setStatus(item, status) {
      item.className = "milestone status-" + status;
      item.querySelector(".milestone-status").textContent = status;
    }

    function onProgress(message) {
      var event = JSON.parse(message.data);
      if (event.run > run) {
        // A retry started a new run: start the list afresh.
        run = event.run;
        list.textContent = "";
        document.getElementById("failure").hidden = true;
        if (fill) { fill.classList.remove("failed"); }
      } else if (event.run < run) {
        return;
      }
      // Every earlier step of this run is done.
      Array.prototype.forEach.call(list.querySelectorAll("li.status-running"), function (item) {
        if (Number(item.getAttribute("data-step")) < event.current_step || event.status !== "running") { setStatus(item, "done"); }
      });
      if (!(event.status === "success" && event.milestone === "Finished")) {
        var item = milestoneItem(event.current_step);
        item.querySelector(".milestone-label").textContent = event.milestone;
        setStatus(item, event.status);
      }
      var headline = event.status === "success" ? "Finished: all " + event.total_steps + " steps done"
        : "Step " + event.current_step + " of " + event.total_steps + ": " + event.milestone;
      text("current-step", headline);
      text("percentage", event.percentage + "%");
      if (fill) { fill.style.width = event.percentage + "%"; }
      if (bar) { bar.setAttribute("aria-valuenow", String(event.percentage)); }
      if (event.status === "failed") {
        if (fill) { fill.classList.add("failed"); }
        text("failure-step", String(event.current_step));
        text("failure-milestone", event.milestone);
        text("failure-command", event.command || "");
        text("failure-exit-code", event.exit_code === null || event.exit_code === undefined ? "" : String(event.exit_code));
        text("failure-stderr", event.stderr_tail || "");
        document.getElementById("failure").hidden = false;
      }
    }

    function onState(message) {
      var data = JSON.parse(message.data);
      var badge = document.querySelector("#job-state .badge");
      if (badge) { badge.className = "badge state-" + data.state; badge.textContent = data.state; }
      text("job-state-text", data.state);
      text("last-error", data.last_error || "—");
      section.setAttribute("data-state", data.state);
      document.getElementById("retry-form").hidden = !(data.state === "failed" || data.state === "cancelled");
      document.getElementById("cancel-form").hidden = !(data.state === "queued" || data.state === "running");
    }

    var source = new EventSource("/jobs/" + jobId + "/events?after=" + encodeURIComponent(after));
    source.addEventListener("progress", onProgress);
    source.addEventListener("state", onState);
    source.addEventListener("end", function () { source.close(); });
  }

  // Fields that belong to one site type (data-site-type) show only while that type is
  // chosen in the select marked data-shows-site-type; without this script they all show.
  var siteType = document.querySelector("select[data-shows-site-type]");
  if (siteType) {
    var showTypeFields = function () {
      document.querySelectorAll("[data-site-type]").forEach(function (element) {
        element.hidden = element.getAttribute("data-site-type") !== siteType.value;
      });
    };
    siteType.addEventListener("change", showTypeFields);
    showTypeFields();
  }

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button || !navigator.clipboard) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // The onboarding stages of a server page follow the server while it is set up;
  // the page reloads once when a stage finishes, fails, or the line gets used.
  function setupOnboarding() {
    var section = document.getElementById("onboarding");
    if (!section || section.getAttribute("data-live") !== "true" || !window.fetch) { return; }
    var serverId = section.getAttribute("data-server-id");
    function signature(status) {
      return status.stages.map(function (stage) { return stage.state; }).join(",") + "|" +
        status.connection_status + "|" + status.provision_status + "|" + status.line_usable;
    }
    var known = null;
    function poll() {
      fetch("/servers/" + serverId + "/onboarding", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (status) {
          if (!status) { return; }
          status.stages.forEach(function (stage) {
            var item = section.querySelector('li[data-stage="' + stage.key + '"]');
            if (!item) { return; }
            item.className = "milestone status-" + stage.state;
            var label = item.querySelector(".milestone-status");
            if (label) { label.textContent = stage.state; }
          });
          var current = signature(status);
          if (known === null) { known = current; }
          else if (current !== known) { window.location.reload(); return; }
          setTimeout(poll, 2000);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  function setup() {
    setupProgress();
    setupOnboarding();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
