// Live updates: every few seconds fetch this page's live region, rendered by the server
// (?partial=1), and swap it in. The server renders all HTML; this only moves it into place.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region) {
    return;
  }
  var every = parseInt(region.getAttribute("data-refresh"), 10) || 3000;
  var stamp = document.getElementById("updated");
  var stale = document.getElementById("stale");
  var busy = false;

  function partialUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    return url.toString();
  }

  function interacting() {
    // Do not replace a form the person is using (a focused field or an open <details>).
    var active = document.activeElement;
    if (active && active !== document.body && region.contains(active) && active.tagName !== "A") {
      return true;
    }
    return region.querySelector("details[open]") !== null;
  }

  function tick() {
    if (busy || document.hidden || interacting()) {
      return;
    }
    busy = true;
    fetch(partialUrl(), { credentials: "same-origin", cache: "no-store", redirect: "error" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/login");
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        region.innerHTML = html;
        if (stamp) {
          stamp.textContent = new Date().toTimeString().slice(0, 8); // 24-hour, as the server writes it
        }
        if (stale) {
          stale.hidden = true;
        }
      })
      .catch(function () {
        if (stale) {
          stale.hidden = false;
        }
      })
      .then(function () {
        busy = false;
      });
  }

  window.setInterval(tick, every);
})();
