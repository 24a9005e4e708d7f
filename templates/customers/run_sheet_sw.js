// The run sheet's service worker. It stores nothing itself: on "Keep on this device for
// today" the page (run-sheet.js) puts the one kept sheet and its static files in the
// "run-sheet" cache. This worker answers from that cache only when the network cannot be
// reached, only for the run sheet and those files, and never after the time the portal
// gave when it was kept (its midnight, or the end of the sign-in that kept it). Every other request goes to the network untouched.
"use strict";

var CACHE = "run-sheet";
var SHEET_PATH = "{{ url('customers:run_sheet')|escapejs }}";
var META = SHEET_PATH + "kept.json";
var STATIC_PREFIX = "{{ static_prefix()|escapejs }}";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function keptCopy() {
  return caches.has(CACHE).then(function (exists) {
    if (!exists) return null;
    return caches.open(CACHE).then(function (cache) {
      return cache.match(META).then(function (meta) {
        if (!meta) return null;
        return meta.json().then(function (kept) {
          if (Date.now() < kept.expires) return {cache: cache, url: kept.url};
          // Past its time: the copy is gone, and so is this worker.
          return caches.delete(CACHE).then(function () { return self.registration.unregister(); }).then(function () { return null; });
        });
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var sheet = request.mode === "navigate" && url.pathname === SHEET_PATH;
  var file = url.pathname.indexOf(STATIC_PREFIX) === 0;
  if (!sheet && !file) return;
  event.respondWith(fetch(request).catch(function () {
    return keptCopy().then(function (copy) {
      if (!copy) return Response.error();
      var options = {ignoreVary: true};
      return copy.cache.match(request, options).then(function (answer) {
        if (answer) return answer;
        // Offline at another sheet's address: the one sheet this device keeps.
        return sheet ? copy.cache.match(copy.url, options) : undefined;
      }).then(function (answer) { return answer || Response.error(); });
    });
  }));
});
