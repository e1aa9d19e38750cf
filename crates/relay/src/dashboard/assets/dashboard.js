// The switchboard dashboard's one script. The page arrives whole from the relay; this keeps it
// fresh: it listens to /dashboard/events and, on any event, fetches the views again (at most
// four times a second) and swaps them in. A lost connection shows a banner until it is back.
(function () {
  "use strict";

  var banner = document.getElementById("connection");

  function showBanner(on) {
    if (banner) {
      banner.hidden = !on;
    }
  }

  // Fetches one view again and swaps it in.
  function load(el) {
    fetch("/dashboard/fragments/" + el.dataset.fragment, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    })
      .then(function (res) {
        if (res.status === 401) {
          // Signed out or the token was revoked: the page shows the login form.
          window.location.reload();
          return null;
        }
        if (!res.ok) {
          throw new Error("status " + res.status);
        }
        return res.text();
      })
      .then(function (html) {
        if (html !== null) {
          // A confirmation the human opened (a job's "Cancel…") stays open across the swap.
          var open = Array.prototype.map.call(
            el.querySelectorAll("details[open][id]"),
            function (d) { return d.id; }
          );
          // Server-rendered and escaped; the policy forbids any script in it anyway.
          el.innerHTML = html;
          open.forEach(function (id) {
            var d = document.getElementById(id);
            if (d) {
              d.open = true;
            }
          });
        }
      })
      .catch(function () {
        showBanner(true);
      });
  }

  // Views that change with time rather than with events (the charts, sampled every 10 s) are
  // read again on their own clock, on the admin token's health page as on a room's page.
  Array.prototype.forEach.call(document.querySelectorAll("[data-every]"), function (el) {
    window.setInterval(function () {
      load(el);
    }, Number(el.dataset.every));
  });

  if (document.body.dataset.live !== "room") {
    return;
  }

  var pending = null;
  var source = null;
  var retryMs = 1000;
  // The last message event seen: a stream we open again ourselves resumes after it, as the
  // browser's own reconnects do with Last-Event-ID.
  var lastId = null;

  // Which views the next refresh reads: some by name, or all.
  var wanted = {};

  function refresh() {
    var only = wanted;
    pending = null;
    wanted = {};
    var views = document.querySelectorAll("[data-fragment]");
    Array.prototype.forEach.call(views, function (el) {
      if (only.all || only[el.dataset.fragment]) {
        load(el);
      }
    });
  }

  function soon(name) {
    if (typeof name === "string") {
      wanted[name] = true;
    } else {
      wanted.all = true;
    }
    if (pending === null) {
      pending = window.setTimeout(refresh, 250);
    }
  }

  function onMessage(event) {
    if (event.lastEventId) {
      lastId = event.lastEventId;
    }
    soon();
  }

  function connect() {
    var url = "/dashboard/events";
    if (lastId !== null) {
      url += "?after=" + encodeURIComponent(lastId);
    }
    source = new EventSource(url);
    source.addEventListener("open", function () {
      retryMs = 1000;
      showBanner(false);
      // Whatever happened while the stream was away.
      soon();
    });
    source.addEventListener("message", onMessage);
    source.addEventListener("jobs", soon);
    source.addEventListener("room", soon);
    // Copies handed over, read or expired: only the messages' states changed.
    source.addEventListener("copies", function () {
      soon("messages");
    });
    source.addEventListener("error", function () {
      showBanner(true);
      if (source.readyState !== EventSource.CLOSED) {
        // The browser reconnects by itself, with Last-Event-ID.
        return;
      }
      // The browser gave up (the relay answered with an error): find out whether the session
      // is over, else try again, waiting longer each time.
      source.close();
      fetch("/dashboard/fragments/peers", { credentials: "same-origin" })
        .then(function (res) {
          if (res.status === 401) {
            window.location.reload();
          } else {
            later();
          }
        })
        .catch(later);
    });
  }

  function later() {
    window.setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  }

  // Wakes are hints that can be lost (a full doorbell socket drops one): the views are also
  // read again now and then, whatever the stream says.
  window.setInterval(soon, 60000);
  connect();
})();
