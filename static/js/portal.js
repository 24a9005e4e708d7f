// The little the portal needs beyond htmx: copy buttons, and focus on desktops only.
(function () {
  "use strict";

  function announce(message) {
    var region = document.getElementById("copy-status");
    if (!region) return;
    region.textContent = "";
    // A fresh text node, so screen readers announce the same message twice in a row.
    window.setTimeout(function () { region.textContent = message; }, 50);
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var copied = document.execCommand("copy");
      document.body.removeChild(area);
      if (copied) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function init(root) {
    root.querySelectorAll("button.copy[hidden]").forEach(function (button) {
      button.hidden = false;
    });
    // A keyboard at a desk wants the cursor in the search box; a tablet does not want
    // its on-screen keyboard to cover the page on arrival.
    var field = root.querySelector("[data-autofocus-desktop]");
    if (field && window.matchMedia("(pointer: fine)").matches && !document.querySelector("#customer-name")) {
      field.focus();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    copyText(text).then(function () {
      button.textContent = "Copied";
      announce("Copied " + text);
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }, function () {
      announce("Could not copy. Select the text and copy it instead.");
    });
  });

  // Searching from the search page: remember what was typed in that page's history
  // entry (/?q=...), so Back returns to the search with the field as it was. The
  // result itself is never kept in browser storage (hx-history="false").
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("form.search") || window.location.pathname !== "/") return;
    // A typo's own address (/?project=21a3) stays as it is: Back returns to that message.
    if (new URLSearchParams(window.location.search).has("project")) return;
    var field = form.querySelector("input[name=project]");
    window.history.replaceState(window.history.state, "", "/?q=" + encodeURIComponent(field.value));
  });

  // Error answers (400 invalid ID, 404 no such project, 403 refused by Solar Proof, ...)
  // are fragments like any other and htmx swaps them in (responseHandling in base.html),
  // keeping their status. With DEBUG on, {% htmx_script %} also loads django-htmx's debug
  // script, which replaces the whole document with any 400/403/404/500 answer: right for
  // Django's own debug pages (whole documents), wrong for the portal's fragments. This
  // listener on window, in the capture phase, runs before the script's on document and
  // keeps fragments from reaching it; whole documents still go to it.
  window.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && !/^\s*<(!doctype|html)/i.test(xhr.responseText)) {
      event.stopPropagation();
    }
  }, true);

  // A run sheet kept for offline reading (run-sheet.js) must not outlive the day or the
  // session. Sign-out's answer also tells the browser to clear it (Clear-Site-Data);
  // this covers browsers that ignore that header.
  function forgetKeptSheet(onlyIfExpired) {
    if (!window.caches || !("serviceWorker" in navigator)) return;
    caches.has("run-sheet").then(function (exists) {
      if (!exists) return null;
      return caches.open("run-sheet").then(function (cache) { return cache.match("/run-sheet/kept.json"); })
        .then(function (answer) { return answer ? answer.json() : {expires: 0}; });
    }).then(function (kept) {
      if (!kept || (onlyIfExpired && Date.now() < kept.expires)) return;
      caches.delete("run-sheet");
      navigator.serviceWorker.getRegistrations().then(function (registrations) {
        registrations.forEach(function (registration) { registration.unregister(); });
      });
    });
  }
  forgetKeptSheet(true);
  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("form.sign-out")) forgetKeptSheet(false);
  });

  // A customer swapped in: keyboard and screen-reader users start at their name, not back
  // at the top of the page. After settling, so htmx's own focus restore (the search box,
  // swapped too) has run. A problem leaves focus where it was (in the box, to correct it),
  // unless what had focus went with the swap (a recent lookup's link): then the problem.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail.target || event.detail.target.id !== "lookup") return;
    var lost = !document.activeElement || document.activeElement === document.body;
    var target = document.getElementById("customer-name") || (lost && document.querySelector("#result .problem"));
    if (!target) return;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
})();
