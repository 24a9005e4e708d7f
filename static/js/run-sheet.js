// "Keep on this device for today": the only place the portal stores customers' details in
// the browser, and only on that explicit request. The sheet (fetched again, and audited,
// from /run-sheet/keep/) and the static files it needs go into one cache, with the sign-in
// that kept it and the time after which nothing may read them (the portal's midnight, or
// the session's end if sooner: customers/run_sheets/device.py); the service worker only
// reads that cache when offline. "Remove from this device", sign-out (Clear-Site-Data),
// midnight, and a page of any other sign-in or of none (portal.js) delete it.
// Move up / Move down in place: the jobs were looked up (and audited) once; moving one
// must not look them all up again (and spend the rate limit). The address, the numbers,
// the move links, the route and the copy to keep follow the new order. Without
// JavaScript the same links reload the sheet in the new order.
(function () {
  "use strict";

  var list = document.querySelector(".run-sheet");
  if (!list || !window.history.replaceState) return;
  // Google Maps opens at most three waypoints on a phone: legs of four stops, each leg
  // starting where the last ended (as customers/presentation.py route_legs).
  var STOPS_PER_LEG = 4;

  function jobs() { return Array.prototype.slice.call(list.querySelectorAll(":scope > li.job")); }

  function query(order) {
    var params = new URLSearchParams(window.location.search);
    params.delete("projects");
    var rest = params.toString();
    return "?projects=" + order.join(",") + (rest ? "&" + rest : "");
  }

  function legsOf(stops) {
    var legs = [];
    var origin = "";
    for (var start = 0; start < stops.length; start += STOPS_PER_LEG) {
      var leg = stops.slice(start, start + STOPS_PER_LEG);
      var last = leg[leg.length - 1];
      var params = new URLSearchParams({api: "1", travelmode: "driving", destination: last.address});
      if (origin) params.set("origin", origin);
      if (leg.length > 1) params.set("waypoints", leg.slice(0, -1).map(function (stop) { return stop.address; }).join("|"));
      legs.push({first: leg[0].number, last: last.number, href: "https://www.google.com/maps/dir/?" + params.toString()});
      origin = last.address;
    }
    return legs;
  }

  function refresh() {
    var items = jobs();
    var order = items.map(function (item) { return item.getAttribute("data-project"); });
    var stops = [];
    var off = [];
    items.forEach(function (item, index) {
      var number = index + 1;
      var name = item.getAttribute("data-name");
      item.querySelector(".job-number").textContent = number + ".";
      var up = item.querySelector("[data-move=up]");
      var down = item.querySelector("[data-move=down]");
      var swap = function (to) { var moved = order.slice(); moved[index] = order[to]; moved[to] = order[index]; return moved; };
      up.hidden = index === 0;
      down.hidden = index === items.length - 1;
      if (!up.hidden) { up.href = query(swap(index - 1)); up.setAttribute("aria-label", "Move " + name + " up, to stop " + (number - 1)); }
      if (!down.hidden) { down.href = query(swap(index + 1)); down.setAttribute("aria-label", "Move " + name + " down, to stop " + (number + 1)); }
      document.querySelectorAll("[data-stop-of='" + order[index] + "']").forEach(function (span) { span.textContent = number; });
      if (item.hasAttribute("data-address")) {
        stops.push({number: number, address: item.getAttribute("data-address")});
      } else {
        off.push("stop " + number);
      }
    });
    var links = document.querySelectorAll(".route-link");
    legsOf(stops).forEach(function (leg, index) {
      var link = links[index];
      if (!link) return;
      var many = links.length > 1;
      var span = leg.last !== leg.first ? "s " + leg.first + " to " + leg.last : " " + leg.first;
      link.href = leg.href;
      var stops = leg.last !== leg.first ? "stops " + leg.first + "–" + leg.last : "stop " + leg.first;
      link.textContent = "Route in Google Maps" + (many ? ", part " + (index + 1) + ": " + stops : "");
      link.setAttribute("aria-label", "Route in Google Maps" + (many ? ", part " + (index + 1) + " of " + links.length : "") +
        ", " + (index === 0 ? "from where you are through" : "on through") + " stop" + span + " (opens a new tab)");
    });
    var offRoute = document.querySelector("[data-off-route]");
    if (offRoute) offRoute.textContent = "Not on the route (no customer or no site address): " + off.join(", ") + ".";
    var kept = document.querySelector("form[data-keep] input[name=projects]");
    if (kept) kept.value = order.join(",");
    window.history.replaceState(window.history.state, "", query(order));
  }

  list.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-move]");
    if (!link) return;
    event.preventDefault();
    var item = link.closest("li.job");
    var up = link.getAttribute("data-move") === "up";
    var other = up ? item.previousElementSibling : item.nextElementSibling;
    if (!other) return;
    list.insertBefore(item, up ? other : other.nextElementSibling);
    refresh();
    // Keep the keyboard where it was: on this job's same control, or its other one at an end.
    var again = item.querySelector("[data-move=" + (up ? "up" : "down") + "]");
    (again.hidden ? item.querySelector("[data-move=" + (up ? "down" : "up") + "]") : again).focus();
    var status = document.getElementById("copy-status");
    if (status) status.textContent = "Moved " + item.getAttribute("data-name") + " to stop " + (jobs().indexOf(item) + 1) + ".";
  });
})();

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
  function here() { return window.location.pathname + window.location.search; }

  function say(text) { status.textContent = text; }

  // The portal's time zone, not the device's: "midnight" and "Saved at" are one clock.
  var zone = section.getAttribute("data-time-zone");
  function signIn() { return document.querySelector("meta[name=portal-sign-in]").getAttribute("content"); }

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
    var until = kept.until === "midnight"
      ? "midnight (end of " + new Date(kept.expires - 1).toLocaleDateString("en-AU", {weekday: "long", timeZone: zone}) + ")"
      : new Date(kept.expires).toLocaleTimeString("en-AU", {hour: "numeric", minute: "2-digit", timeZone: zone}) +
        ", when this sign-in ends";
    say(kept.url === here()
      ? "This sheet is kept on this device until " + until + "."
      : "Another run sheet is kept on this device until " + until + ".");
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
    var kept = {url: here(), keeper: signIn()};
    var cache;
    remove().then(function () {
      return fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin"});
    }).then(function (answer) {
      if (!answer.ok) throw new Error("The portal answered " + answer.status);
      // Until the portal's midnight, or the end of this sign-in if that comes first.
      kept.expires = Number(answer.headers.get("X-Kept-Until"));
      kept.until = answer.headers.get("X-Kept-Until-Reason");
      if (!kept.expires) throw new Error("The portal did not say until when");
      return caches.open(CACHE).then(function (opened) { cache = opened; return cache.put(kept.url, answer); });
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
