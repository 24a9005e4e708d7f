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

  // A run sheet kept for offline reading (run-sheet.js) belongs to the sign-in that kept
  // it and must not outlive the portal's day or that session. Any page of another sign-in
  // (the next person on the device), or of none (the sign-in page once the session ended),
  // removes it; so do sign-out (its answer also sends Clear-Site-Data) and midnight.
  function signIn() {
    var meta = document.querySelector("meta[name=portal-sign-in]");
    return meta ? meta.getAttribute("content") : "";
  }

  function forgetKeptSheet(always) {
    if (!window.caches || !("serviceWorker" in navigator)) return Promise.resolve();
    return caches.has("run-sheet").then(function (exists) {
      if (!exists) return null;
      return caches.open("run-sheet").then(function (cache) { return cache.match("/run-sheet/kept.json"); })
        .then(function (answer) { return answer ? answer.json() : {expires: 0}; });
    }).then(function (kept) {
      if (!kept || (!always && Date.now() < kept.expires && kept.keeper === signIn())) return null;
      return caches.delete("run-sheet").then(function () {
        return navigator.serviceWorker.getRegistrations();
      }).then(function (registrations) {
        return Promise.all(registrations.map(function (registration) { return registration.unregister(); }));
      });
    });
  }
  forgetKeptSheet(false);

  // Sign out: the kept copy goes first. Without a connection the browser would show its
  // own "no internet" page and the portal would keep the session: instead the page says
  // so, shows no customer any more, and sends the sign-out as soon as the portal answers.
  function portalAnswers(form) {
    return fetch(form.getAttribute("data-probe"), {cache: "no-store", credentials: "omit"})
      .then(function (answer) { return answer.ok; }, function () { return false; });
  }

  function signOutWhenBack(form) {
    var main = document.getElementById("main");
    main.innerHTML = "";
    var heading = document.createElement("h1");
    heading.textContent = "No connection: you will be signed out when it is back";
    var text = document.createElement("p");
    text.textContent = "The run sheet kept on this device has been removed. The portal has not heard the sign-out yet: " +
      "leave this page open and it finishes by itself as soon as there is signal.";
    var box = document.createElement("div");
    box.className = "problem sign-out-pending";
    box.setAttribute("role", "alert");
    box.append(heading, text);
    main.append(box);
    var retry = function () {
      portalAnswers(form).then(function (answers) {
        if (answers) { form.submit(); } else { window.setTimeout(retry, 5000); }
      });
    };
    window.addEventListener("online", retry, {once: true});
    window.setTimeout(retry, 5000);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.sign-out")) return;
    event.preventDefault();
    form.querySelector("button").disabled = true;
    forgetKeptSheet(true).then(function () { return portalAnswers(form); }).then(function (answers) {
      if (answers) { form.submit(); } else { signOutWhenBack(form); }
    });
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
