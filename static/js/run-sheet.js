// "Keep on this device for today": the only place the portal stores customers' details in
// the browser, and only on that explicit request. The sheet (fetched again, and audited,
// from /run-sheet/keep/) and the static files it needs go into one cache, with the local
// midnight after which nothing may read them; the service worker only reads that cache
// when offline. "Remove from this device", sign-out (Clear-Site-Data) and midnight delete it.
(function () {
  "use strict";

  var CACHE = "run-sheet";
  var section = document.querySelector("[data-run-sheet-device]");
  if (!section || !("serviceWorker" in navigator) || !window.caches) return;

  var scope = section.getAttribute("data-scope");
  var meta = scope + "kept.json";
  var form = section.querySelector("form[data-keep]");
  var removeButton = section.querySelector("[data-remove]");
  var status = section.querySelector("[data-device-status]");
  var here = window.location.pathname + window.location.search;

  function say(text) { status.textContent = text; }

  function midnight() {
    var next = new Date();
    next.setHours(24, 0, 0, 0);
    return next.getTime();
  }

  function readKept() {
    return caches.has(CACHE).then(function (exists) {
      if (!exists) return null;
      return caches.open(CACHE).then(function (cache) { return cache.match(meta); })
        .then(function (answer) { return answer ? answer.json() : null; });
    });
  }

  function remove() {
    return caches.delete(CACHE).then(function () {
      return navigator.serviceWorker.getRegistrations();
    }).then(function (registrations) {
      return Promise.all(registrations.filter(function (registration) {
        return new URL(registration.scope).pathname === scope;
      }).map(function (registration) { return registration.unregister(); }));
    });
  }

  function show(kept) {
    removeButton.hidden = !kept;
    if (!kept) return;
    var until = new Date(kept.expires - 1).toLocaleDateString("en-AU", {weekday: "long"});
    say(kept.url === here
      ? "This sheet is kept on this device until midnight (end of " + until + ")."
      : "Another run sheet is kept on this device until midnight.");
    window.setTimeout(function () { remove().then(function () { show(null); }); },
      Math.min(Math.max(kept.expires - Date.now(), 0), 2147483647));
  }

  function keep(event) {
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    say("Keeping this sheet on this device…");
    var files = Array.prototype.map.call(
      document.querySelectorAll("link[rel=stylesheet][href], link[rel=icon][href], script[src]"),
      function (element) { return element.getAttribute("href") || element.getAttribute("src"); });
    var kept = {url: here, expires: midnight()};
    var cache;
    remove().then(function () {
      return fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin"});
    }).then(function (answer) {
      if (!answer.ok) throw new Error("The portal answered " + answer.status);
      return caches.open(CACHE).then(function (opened) { cache = opened; return cache.put(here, answer); });
    }).then(function () {
      return cache.addAll(files);
    }).then(function () {
      return cache.put(meta, new Response(JSON.stringify(kept), {headers: {"Content-Type": "application/json"}}));
    }).then(function () {
      return navigator.serviceWorker.register(section.getAttribute("data-service-worker"), {scope: scope});
    }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () {
      show(kept);
    }).catch(function () {
      remove().then(function () { say("This sheet could not be kept on this device. Try again with signal."); });
    }).then(function () {
      button.disabled = false;
    });
  }

  section.hidden = false;
  if (form) form.addEventListener("submit", keep);
  removeButton.addEventListener("click", function () {
    remove().then(function () { show(null); say("Removed from this device."); });
  });
  readKept().then(function (kept) {
    if (kept && Date.now() >= kept.expires) return remove().then(function () { show(null); });
    show(kept);
  });
})();
