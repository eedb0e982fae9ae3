// Checkout: keep the summary's total in step with the quantity; typing a new address selects it.
(function () {
  "use strict";
  const quantity = document.getElementById("f-quantity");
  const sumQuantity = document.getElementById("sum-quantity");
  const sumTotal = document.getElementById("sum-total");
  if (quantity && sumTotal) {
    // work in cents so that 19.90 × 3 is 59.70, not 59.699999
    const unitCents = Math.round(parseFloat(quantity.dataset.unitPrice) * 100);
    quantity.addEventListener("input", function () {
      const n = parseInt(quantity.value, 10);
      if (!Number.isInteger(n) || n < 1 || n > 99) return;
      const cents = unitCents * n;
      sumQuantity.textContent = String(n);
      sumTotal.textContent = "¥" + Math.floor(cents / 100) + "." + String(cents % 100).padStart(2, "0");
    });
  }

  const box = document.getElementById("new-address");
  const pickNew = document.getElementById("addr-new");
  if (box && pickNew) {
    box.addEventListener("input", function (event) {
      if (event.target !== pickNew && event.target.name && event.target.name.startsWith("new_")) pickNew.checked = true;
    });
    box.addEventListener("toggle", function () {
      if (box.open) {
        const first = box.querySelector('input[name^="new_"]');
        if (first) first.focus();
      }
    });
  }
})();
