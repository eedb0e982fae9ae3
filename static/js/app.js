// FlashSale page helpers: JSON calls that carry the session's CSRF token.
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

  // what inline handlers used to do (the Content-Security-Policy allows no inline script):
  // <form data-confirm="Sure?"> asks first; <select data-autosubmit> submits its form on change
  document.addEventListener("submit", (event) => {
    const form = event.target.closest?.("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches?.("select[data-autosubmit]") && event.target.form) event.target.form.requestSubmit();
  });

  window.FlashSale = { api, syncClock, serverNow, formatLeft };
})();
