// Flash-sale pages: countdowns on the server's clock, live stock, and the buy button's round trip.
(function () {
  "use strict";
  const FS = window.FlashSale;
  if (!FS) return;

  // --- the clock ------------------------------------------------------------------------------
  // Until /api/time answers, estimate the server's clock from the time the page was rendered;
  // a phone whose clock is minutes off still opens the button on time.
  const rendered = document.querySelector("[data-server-time]");
  const earlyOffsetMs = rendered ? Date.parse(rendered.dataset.serverTime) - Date.now() : 0;
  let synced = false;
  let correctionMs = 0; // set when the server says "not started" although this clock says started
  const now = () => (synced ? FS.serverNow() : Date.now() + (earlyOffsetMs || 0)) + correctionMs;

  // --- phases, badges and countdowns (list cards and the sale page alike) ---------------------
  const BADGES = {
    live: ["text-bg-danger", "bi-lightning-charge-fill", "Live"],
    upcoming: ["text-bg-warning", "bi-alarm", "Soon"],
    ended: ["text-bg-secondary", "bi-flag", "Ended"],
    cancelled: ["text-bg-secondary", "bi-x-circle", "Cancelled"],
  };
  const LABELS = { upcoming: "Starts in", live: "Ends in", ended: "Ended", cancelled: "Cancelled" };

  function phaseOf(el, t) {
    const fixed = el.dataset.fixed || (el.dataset.state === "cancelled" ? "cancelled" : "");
    if (fixed) return fixed;
    if (t < Date.parse(el.dataset.start)) return "upcoming";
    if (t < Date.parse(el.dataset.end)) return "live";
    return "ended";
  }

  function paintBadge(badge, phase) {
    const [color, icon, label] = BADGES[phase];
    badge.className = "badge " + color;
    badge.dataset.state = phase;
    const i = document.createElement("i");
    i.className = "bi " + icon;
    badge.replaceChildren(i, document.createTextNode(" " + label));
  }

  // repaint one sale (a card, or the sale page's root); returns ms to its next start or end
  function paint(el, t) {
    const phase = phaseOf(el, t);
    const start = Date.parse(el.dataset.start), end = Date.parse(el.dataset.end);
    if (el.dataset.painted !== phase) {
      el.dataset.painted = phase;
      el.dataset.state = phase;
      el.querySelectorAll('[data-role="badge"]').forEach((b) => paintBadge(b, phase));
      el.querySelectorAll('[data-role="phase-label"]').forEach((l) => { l.textContent = LABELS[phase]; });
      el.querySelectorAll("[data-phase]").forEach((b) => { b.dataset.phase = phase; });
    }
    const edge = phase === "upcoming" ? start : phase === "live" ? end : null;
    const left = edge === null ? null : edge - t;
    // round up: "00:00:01" shows until the very moment the sale opens
    el.querySelectorAll('[data-role="left"]').forEach((c) => {
      c.textContent = left === null ? "" : FS.formatLeft(Math.ceil(left / 1000) * 1000);
    });
    return left;
  }

  const sales = Array.from(document.querySelectorAll("[data-sale]"));
  const root = document.getElementById("sale");
  if (root) sales.push(root);
  if (!sales.length) return;

  // every second, and exactly at a start or an end
  const tick = FS.countdown(function (t) {
    let next = null;
    sales.forEach((el) => {
      const left = paint(el, t);
      if (left !== null) next = Math.min(next === null ? Infinity : next, left);
    });
    if (root) onPhase(phaseOf(root, t));
    return next;
  }, now);

  // --- the sale page ----------------------------------------------------------------------------
  const id = root ? root.dataset.saleId : null;
  const loginUrl = "/login?next=/seckill/" + id;
  const messagesEl = document.getElementById("sale-messages");
  const M = messagesEl ? JSON.parse(messagesEl.textContent) : {};
  const form = document.getElementById("buy-form");
  const button = document.getElementById("buy-button");
  const buyLabel = button ? button.querySelector('[data-role="buy-label"]') : null;
  const buyIcon = button ? button.querySelector('[data-role="buy-icon"]') : null;
  const limit = root ? parseInt(root.dataset.limit, 10) || 1 : 1;
  let held = root ? parseInt(root.dataset.held, 10) || 0 : 0;  // units in the buyer's standing orders
  let acted = false;  // the buyer clicked: outcomes take the focus
  const status = document.getElementById("buy-status");
  let remaining = root ? parseInt(root.dataset.remaining, 10) : 0;
  let phase = root ? root.dataset.state : "";
  let busy = false;   // a purchase or its result is in flight
  let sending = false;
  let retryAt = 0;    // after a 429, not before this (local clock)
  let finished = false;

  function refreshButton() {
    if (!button) return;
    const bought = held >= limit;
    let text = "Buy now", enabled = false;
    if (bought) {
      text = M.bought;
    } else if (phase === "upcoming") {
      text = "Starts at " + FS.formatTime(root.dataset.start, "time");
    } else if (phase === "live") {
      if (sending) text = "Sending…";
      else if (remaining <= 0) text = "Sold out";
      else enabled = !busy && Date.now() >= retryAt;
    } else if (phase === "ended") {
      text = "Sale ended";
    } else if (phase === "cancelled") {
      text = "Sale cancelled";
    }
    button.disabled = !enabled;
    buyLabel.textContent = text;
    button.classList.toggle("btn-danger", !bought);
    button.classList.toggle("btn-success", bought);
    if (buyIcon) buyIcon.className = "bi " + (bought ? "bi-check-circle-fill" : "bi-lightning-charge-fill");
  }

  let phaseShown = null;
  function onPhase(next) {
    if (next === phaseShown) return;
    phaseShown = phase = next;
    refreshButton();
    if (phase === "ended" || phase === "cancelled") stopLive();
  }

  function setRemaining(n) {
    remaining = Math.max(0, n);
    const total = parseInt(root.dataset.total, 10);
    const sold = Math.max(0, total - remaining);
    root.dataset.remaining = String(remaining);
    root.querySelectorAll('[data-role="remaining"]').forEach((e) => { e.textContent = String(remaining); });
    root.querySelectorAll('[data-role="sold"]').forEach((e) => { e.textContent = String(sold); });
    root.querySelectorAll('[data-role="bar"]').forEach((bar) => {
      bar.setAttribute("aria-valuenow", String(sold));
      bar.firstElementChild.style.width = (total ? (sold * 100 / total).toFixed(1) : 0) + "%";
    });
    refreshButton();
  }

  // one message in the panel: {kind, text, spin, link: {href, text, testid, cls}, action: {text, run}}
  function say(kind, text, opts) {
    const o = opts || {};
    const box = document.createElement("div");
    box.className = "alert alert-" + kind + " mt-3 mb-0 d-flex flex-wrap align-items-center gap-2";
    const span = document.createElement("span");
    span.className = "me-auto";
    if (o.spin) {
      const s = document.createElement("span");
      s.className = "spinner-border spinner-border-sm me-1";
      s.setAttribute("aria-hidden", "true");
      span.append(s);
    }
    span.append(document.createTextNode(text));
    box.append(span);
    if (o.link) {
      const a = document.createElement("a");
      a.href = o.link.href;
      a.className = o.link.cls || "alert-link";
      a.textContent = o.link.text;
      if (o.link.testid) a.dataset.testid = o.link.testid;
      box.append(a);
    }
    if (o.action) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn btn-sm btn-outline-secondary";
      b.textContent = o.action.text;
      b.addEventListener("click", o.action.run);
      box.append(b);
    }
    status.replaceChildren(box);
    if (acted && !o.spin) {
      box.tabIndex = -1;
      box.focus();
    }
    return box;
  }

  // --- the buyer's order: "You got one · Pay now (14:57 left)", counting down to the pay deadline -----
  let payTick = null;
  function startPayCountdown() {
    const clocks = status.querySelectorAll('[data-role="pay-left"][data-deadline]');
    if (!clocks.length) return;
    if (payTick === null) {
      payTick = FS.countdown(function (t) {
        let running = false;
        status.querySelectorAll('[data-role="pay-left"][data-deadline]').forEach(function (el) {
          const left = Math.max(0, Date.parse(el.dataset.deadline) - t);
          const s = Math.ceil(left / 1000);
          el.textContent = String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
          if (left > 0) running = true;
        });
        return running ? Infinity : null;
      }, now);
    }
    payTick();
  }

  async function showSuccess(orderId) {
    held += 1;
    refreshButton();
    let order = null;
    try {
      const r = await FS.api("GET", "/api/orders/" + orderId);
      if (r && r.code === 200) order = r.data.order || r.data;
    } catch (e) { order = null; }
    const deadline = order && order.pay_deadline;
    const box = say("success", deadline ? M.success.replace("{deadline}", FS.formatTime(deadline, "time"))
                                        : M.success.replace(" by {deadline}", ""));
    const line = document.createElement("div");
    line.className = "d-flex flex-wrap align-items-center gap-2 w-100";
    line.dataset.testid = "bought";
    const got = document.createElement("span");
    const icon = document.createElement("i");
    icon.className = "bi bi-check-circle-fill";
    got.append(icon, document.createTextNode(" " + M.bought + " · "));
    const pay = document.createElement("a");
    pay.className = "btn btn-danger btn-sm";
    pay.href = "/orders/" + orderId;
    pay.dataset.testid = "pay-now";
    pay.append(document.createTextNode("Pay now"));
    if (deadline) {
      const left = document.createElement("span");
      left.className = "countdown";
      left.dataset.role = "pay-left";
      left.dataset.deadline = deadline;
      pay.append(document.createTextNode(" ("), left, document.createTextNode(" left)"));
    }
    line.append(got, pay);
    box.append(line);
    startPayCountdown();
  }

  // --- the outcome: one long-poll, held by the server until the batch commits ----------------------
  const WAIT_MS = 10000;       // the server holds the answer up to this long
  const LONG_POLLS = 2;        // still queued after the first wait: ask once more
  const RETRY_MS = 1000;       // after a network error or a 503
  const POLL_LIMIT_MS = 30000;

  function pollResult() {
    busy = true;
    refreshButton();
    say("info", M.queued, { spin: true });
    const began = Date.now();
    let waits = 0;
    const done = () => { busy = false; refreshButton(); };
    async function step() {
      let r = null;
      try {
        r = await FS.api("GET", "/api/seckill/" + id + "/result?wait_ms=" + WAIT_MS);
      } catch (e) { r = null; }
      if (r && r.code === 401) { window.location.assign(loginUrl); return; }
      const d = r && r.code === 200 ? r.data : null;
      if (d && d.status === "success") { done(); showSuccess(d.order_id); return; }
      if (d && d.status === "failed") { done(); say("warning", M[d.reason] || M.failed); return; }
      if (d) waits++;
      if (waits >= LONG_POLLS || Date.now() - began >= POLL_LIMIT_MS) {
        done();
        say("warning", M.slow, { action: { text: "Check again", run: pollResult } });
        return;
      }
      // held and still queued: ask again at once; an error: after a pause
      window.setTimeout(step, d ? 0 : RETRY_MS);
    }
    step();
  }

  // --- the purchase -----------------------------------------------------------------------------
  function onRefusal(r) {
    const data = r.data || {};
    if (r.code === 401) { window.location.assign(loginUrl); return; }
    if (r.code === 409 && data.reason === "sold_out") {
      setRemaining(0);
      say("warning", M.sold_out);
    } else if (r.code === 409 && data.reason === "already_purchased") {
      say("info", M.already_purchased, { link: { href: "/orders", text: "My orders", testid: "my-orders" } });
    } else if (r.code === 409 && data.reason === "not_started") {
      if (typeof data.starts_in_ms === "number") {
        // the server's clock is behind this one: follow it until the start
        correctionMs += Date.parse(root.dataset.start) - data.starts_in_ms - now();
      }
      say("warning", M.not_started);
    } else if (r.code === 409 && data.reason === "ended") {
      root.dataset.fixed = "ended";
      say("secondary", M.ended);
    } else if (r.code === 429) {
      retryAt = Date.now() + 1000 * Math.max(1, data.retry_after || 1);
      window.setTimeout(refreshButton, retryAt - Date.now() + 10);
      say("warning", M.rate_limited);
    } else if (r.code === 400 && data.errors) {
      say("danger", Object.values(data.errors).join(" ") || r.msg);
    } else {
      say("danger", r.msg || M.error);
    }
    tick();
  }

  async function buy(event) {
    event.preventDefault();
    if (button.disabled) return;
    acted = true;
    busy = sending = true;
    refreshButton();
    status.replaceChildren();
    let r = null;
    try {
      r = await FS.api("POST", "/api/seckill/" + id + "/purchase", {
        address_id: parseInt(form.elements.address_id.value, 10),
        payment_method: form.elements.payment_method.value,
      });
    } catch (e) {
      r = null;
    }
    sending = false;
    if (r && r.code === 202) {
      pollResult();
      return;
    }
    busy = false;
    refreshButton();
    if (r === null) say("danger", M.network);
    else onRefusal(r);
  }

  // --- live stock: the WebSocket, or polling when it fails ---------------------------------------
  const POLL_SALE_MS = 2000;
  let socket = null;
  let poller = null;

  function onLive(m) {
    if (!m) return;
    if (typeof m.remaining === "number") setRemaining(m.remaining);
    if (m.state === "ended" || m.state === "cancelled") {
      root.dataset.fixed = m.state;
      tick();
    }
  }

  function startPolling() {
    if (poller !== null || finished) return;
    poller = window.setInterval(async function () {
      try {
        const r = await FS.api("GET", "/api/seckill/" + id);
        if (r && r.code === 200) onLive(r.data);
      } catch (e) { /* offline for a moment: the next round tries again */ }
    }, POLL_SALE_MS);
  }

  function connectLive() {
    if (!("WebSocket" in window)) { startPolling(); return; }
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + "/api/seckill/" + id + "/live");
    } catch (e) {
      startPolling();
      return;
    }
    socket.addEventListener("message", function (event) {
      let m = null;
      try { m = JSON.parse(event.data); } catch (e) { return; }
      onLive(m);
    });
    socket.addEventListener("close", function () {
      socket = null;
      startPolling();
    });
  }

  function stopLive() {
    finished = true;
    if (poller !== null) { window.clearInterval(poller); poller = null; }
    if (socket !== null) { const s = socket; socket = null; s.close(); }
  }

  // --- start ------------------------------------------------------------------------------------
  tick();
  FS.syncClock().then(function () {
    synced = Number.isFinite(FS.serverNow());
    tick();
  }).catch(function () { /* keep the estimate from the page */ });

  if (root) {
    if (form) form.addEventListener("submit", buy);
    if (root.dataset.earlier === "queued") pollResult();
    startPayCountdown();
    if (phase === "upcoming" || phase === "live") connectLive();
  }
})();
