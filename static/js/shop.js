// Shop pages: countdowns to a flash sale's start or end, on the server's clock.
(function () {
  "use strict";
  const FS = window.FlashSale;
  const clocks = document.querySelectorAll("[data-countdown]");
  if (!clocks.length || !FS) return;

  const tick = FS.countdown(function (now) {
    let running = false;
    clocks.forEach(function (el) {
      const left = Date.parse(el.dataset.countdown) - now;
      if (left > 0) {
        el.textContent = FS.formatLeft(left);
        running = true;
      } else {
        el.textContent = el.dataset.done || "00:00:00";
      }
    });
    return running ? Infinity : null;
  }, FS.serverNow);

  tick();
  FS.syncClock().catch(function () { return 0; }).then(tick);
})();
