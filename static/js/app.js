// FlashSale page helpers: JSON calls that carry the session's CSRF token, the server's clock and a
// countdown loop on it, times in the viewer's zone, and the behaviour templates ask for with data- attributes (no inline script).
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

  // --- times in the viewer's zone: <time datetime="...Z" data-local="datetime|time"> ---------------
  // The server writes UTC (the fallback text says so); here each becomes the browser's local time,
  // with its zone named, e.g. "2026-11-24 20:00 GMT+8" or "20:00 EST".
  const FORMATS = {
    datetime: { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
                hourCycle: "h23", timeZoneName: "short" },
    time: { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" },
  };

  function formatTime(value, style) {
    const date = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(date.getTime())) return "";
    return new Intl.DateTimeFormat(undefined, FORMATS[style] || FORMATS.datetime).format(date);
  }

  // the browser's zone in short form ("GMT+8", "EST"), for labels
  function zoneName(date) {
    const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
      .formatToParts(date || new Date()).find((p) => p.type === "timeZoneName");
    return part ? part.value : "";
  }

  function localizeTimes(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      const text = formatTime(el.getAttribute("datetime"), el.dataset.local);
      if (text) {
        el.textContent = text;
        el.title = el.getAttribute("datetime").slice(0, 16).replace("T", " ") + " UTC";
      }
    });
    (root || document).querySelectorAll("[data-zone-name]").forEach(function (el) { el.textContent = zoneName(); });
  }

  // --- datetime-local inputs typed in the viewer's zone -------------------------------------------
  // <input type="datetime-local" data-zone-input> carries UTC from the server; shown here in local
  // time, and on submit its hidden twin NAME_utc carries the UTC ISO time. Without this script the
  // input is read as UTC, and its [data-utc-note] says so.
  const pad = (n) => String(n).padStart(2, "0");
  function localInputValue(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" +
      pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function zoneInputs() {
    document.querySelectorAll("input[type=datetime-local][data-zone-input]").forEach(function (input) {
      if (input.value) {
        const utc = new Date(input.value + "Z");
        if (!Number.isNaN(utc.getTime())) input.value = localInputValue(utc);
      }
      const twin = document.createElement("input");
      twin.type = "hidden";
      twin.name = input.name + "_utc";
      input.after(twin);
      const fill = function () {
        const local = input.value ? new Date(input.value) : null; // no zone: read as local time
        twin.value = local && !Number.isNaN(local.getTime()) ? local.toISOString() : "";
      };
      input.addEventListener("input", fill);
      input.addEventListener("change", fill);
      if (input.form) input.form.addEventListener("submit", fill);
      fill();
    });
    document.querySelectorAll("[data-utc-note]").forEach(function (el) { el.textContent = "(" + zoneName() + ")"; });
  }

  localizeTimes();
  zoneInputs();

  // <form data-confirm="Question?"> (or a submit button with it) asks before it posts
  document.addEventListener("submit", function (event) {
    const question = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // <select data-autosubmit> posts its form as soon as it changes
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]") && event.target.form) event.target.form.submit();
  });

  window.FlashSale = { api, syncClock, serverNow, formatLeft, countdown, formatTime, localizeTimes, zoneName };
})();
