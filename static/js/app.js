// FlashSale page helpers: JSON calls that carry the session's CSRF token, the server's clock and a
// countdown loop on it, and the behaviour templates ask for with data- attributes (no inline script).
(function () {
  "use strict";
  const token = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function api(method, url, body) {
    const init = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") init.headers["X-CSRF-Token"] = token();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    let payload = null;
    try { payload = await response.json(); } catch (e) { payload = { code: response.status, msg: response.statusText, data: null }; }
    return payload;
  }

  // server time offset, so countdowns follow the server's clock and not the phone's
  let offsetMs = 0;
  async function syncClock() {
    const sent = Date.now();
    const r = await api("GET", "/api/time");
    if (r && r.data) offsetMs = Date.parse(r.data.server_time) - (sent + Date.now()) / 2;
    return offsetMs;
  }
  const serverNow = () => Date.now() + offsetMs;

  function formatLeft(ms) {
    if (ms <= 0) return "00:00:00";
    const s = Math.floor(ms / 1000), d = Math.floor(s / 86400);
    const hh = String(Math.floor(s % 86400 / 3600)).padStart(2, "0");
    const mm = String(Math.floor(s % 3600 / 60)).padStart(2, "0");
    const ss = String(s % 60).padStart(2, "0");
    return (d ? d + "d " : "") + hh + ":" + mm + ":" + ss;
  }

  // Calls paint(t) with t = now() at once and then at every whole second, or sooner when paint says
  // when the next start or end is; paint returns the ms to it, Infinity when only the seconds move,
  // or null when nothing counts down any more (the loop stops). Returns the tick, to repaint at will.
  function countdown(paint, now) {
    let timer = null;
    function tick() {
      window.clearTimeout(timer);
      const t = now();
      const next = paint(t);
      if (next === null) return;
      const wait = Math.min(1000 - (((t % 1000) + 1000) % 1000), next > 0 ? next : Infinity);
      timer = window.setTimeout(tick, wait + 5);
    }
    return tick;
  }

  // <form data-confirm="Question?"> (or a submit button with it) asks before it posts
  document.addEventListener("submit", function (event) {
    const question = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // <select data-autosubmit> posts its form as soon as it changes
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]") && event.target.form) event.target.form.submit();
  });

  window.FlashSale = { api, syncClock, serverNow, formatLeft, countdown };
})();
