// outguard console: small progressive enhancements. Every page works
// without this script.
(function () {
  "use strict";

  // Ask before destructive or outgoing actions marked data-confirm.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-confirm]") : null;
    if (b && !window.confirm(b.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });

  // The report's lock/unlock toggle works in place.
  function stateBadge(locked) {
    var s = document.createElement("span");
    s.className = "badge " + (locked ? "state-active" : "state-open");
    var icon = document.createElement("span");
    icon.setAttribute("aria-hidden", "true");
    icon.className = "icon " + (locked ? "icon-lock" : "icon-unlock");
    s.appendChild(icon);
    s.appendChild(document.createTextNode(locked ? " Locked" : " Not locked"));
    return s;
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("toggle-form") || !window.fetch) {
      return;
    }
    ev.preventDefault();
    var row = form.closest("tr");
    var msg = form.querySelector(".toggle-msg");
    var button = form.querySelector("button[type=submit]");
    var data = new URLSearchParams(new FormData(form));
    button.disabled = true;
    msg.textContent = "Working\u2026";
    // The form has a field named "action", which shadows form.action.
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": form.elements.csrf.value }
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
    }).then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        msg.textContent = "Error: " + (res.body.error ? res.body.error.message : "request failed");
        return;
      }
      var locked = res.body.locked;
      var cell = row.querySelector(".lock-state");
      cell.textContent = "";
      cell.appendChild(stateBadge(locked));
      row.classList.toggle("is-locked", locked);
      form.elements.action.value = locked ? "unlock" : "lock";
      form.elements.reason.value = "";
      var dur = form.elements.duration;
      if (dur) {
        dur.value = "";
        dur.hidden = locked;
        dur.disabled = locked;
      }
      button.textContent = locked ? "Unlock" : "Lock";
      button.className = locked ? "primary" : "danger";
      msg.textContent = res.body.message;
    }).catch(function () {
      button.disabled = false;
      msg.textContent = "Error: the request failed; reload the page.";
    });
  });
})();

// The log's rule builder: text rules left empty are folded away behind
// an "Add rule" control; each shown rule can be removed. Without the
// script every rule is shown.
(function () {
  "use strict";
  var grid = document.querySelector("form.filters .grid");
  if (!grid) {
    return;
  }
  var rules = Array.prototype.slice.call(grid.querySelectorAll("[data-rule]"));
  if (rules.length === 0) {
    return;
  }
  var bar = document.createElement("div");
  bar.className = "add-rule";
  var pickLabel = document.createElement("label");
  pickLabel.setAttribute("for", "add-rule-field");
  pickLabel.textContent = "Add a rule";
  var pick = document.createElement("select");
  pick.id = "add-rule-field";
  var add = document.createElement("button");
  add.type = "button";
  add.textContent = "Add rule";
  bar.appendChild(pickLabel);
  bar.appendChild(pick);
  bar.appendChild(add);
  grid.parentNode.insertBefore(bar, grid);

  function ruleName(rule) {
    return rule.querySelector("label").textContent.trim();
  }
  function refresh() {
    pick.textContent = "";
    rules.forEach(function (label) {
      if (label.hidden) {
        var o = document.createElement("option");
        o.value = label.getAttribute("data-rule");
        o.textContent = ruleName(label);
        pick.appendChild(o);
      }
    });
    bar.hidden = pick.options.length === 0;
  }
  rules.forEach(function (label) {
    var input = label.querySelector("input");
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove-rule";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", "Remove the rule " + ruleName(label));
    remove.addEventListener("click", function () {
      input.value = "";
      label.hidden = true;
      refresh();
      pick.focus();
    });
    label.appendChild(remove);
    label.hidden = input.value === "";
  });
  add.addEventListener("click", function () {
    var name = pick.value;
    rules.forEach(function (label) {
      if (label.getAttribute("data-rule") === name) {
        label.hidden = false;
        label.querySelector("input").focus();
      }
    });
    refresh();
  });
  refresh();

  // The log's bulk form: a header box selects every row; the duration
  // shows only for locks; the button counts the selection.
  var bulk = document.getElementById("bulk-form");
  if (bulk) {
    var boxes = function () { return document.querySelectorAll('input[name=id][form="bulk-form"]'); };
    var head = document.querySelector("th.select-all");
    if (head) {
      var all = document.createElement("input");
      all.type = "checkbox";
      all.id = "select-all";
      all.setAttribute("aria-label", "Select every message on this page");
      head.appendChild(all);
      all.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = all.checked; });
        count();
      });
    }
    var action = document.getElementById("bulk-action");
    var dur = document.getElementById("bulk-duration").closest("label");
    var submit = document.getElementById("bulk-submit");
    var count = function () {
      var n = 0;
      boxes().forEach(function (b) { if (b.checked) { n++; } });
      submit.textContent = "Apply to " + n + " selected";
    };
    var showDuration = function () { dur.hidden = action.value !== "lock"; };
    action.addEventListener("change", showDuration);
    document.addEventListener("change", function (ev) {
      if (ev.target.getAttribute && ev.target.getAttribute("form") === "bulk-form") { count(); }
    });
    showDuration();
    count();
  }
})();
