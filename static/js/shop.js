// Shop pages: countdowns to a flash sale's start or end, on the server's clock.
(function () {
  "use strict";
  const clocks = document.querySelectorAll("[data-countdown]");
  if (!clocks.length || !window.FlashSale) return;

  let timer = null;
  function tick() {
    window.clearTimeout(timer);
    const now = window.FlashSale.serverNow();
    let running = false;
    clocks.forEach(function (el) {
      const left = Date.parse(el.dataset.countdown) - now;
      if (left > 0) {
        el.textContent = window.FlashSale.formatLeft(left);
        running = true;
      } else {
        el.textContent = el.dataset.done || "00:00:00";
      }
    });
    if (running) timer = window.setTimeout(tick, 1000 - (now % 1000) + 5);
  }

  tick();
  window.FlashSale.syncClock().catch(function () { return 0; }).then(tick);
})();
