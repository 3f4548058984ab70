// The customer portal: the total of the ticked invoices, kept up to date as boxes are ticked.
// The page works without it (the server counts what was ticked when Pay is pressed).
(function () {
  "use strict";
  var form = document.querySelector("form.portal-form");
  var total = document.getElementById("portal-total");
  if (!form || !total || typeof Intl === "undefined") {
    return;
  }
  var format = new Intl.NumberFormat(total.dataset.locale, {
    style: "currency",
    currency: total.dataset.currency,
  });
  var digits = format.resolvedOptions().maximumFractionDigits;
  function update() {
    var minor = 0;
    form.querySelectorAll('input[name="invoices"]:checked').forEach(function (box) {
      minor += parseInt(box.dataset.amount, 10) || 0;
    });
    // Integers are added; only the sum is divided, for display.
    total.textContent = format.format(minor / Math.pow(10, digits));
  }
  form.addEventListener("change", update);
  update();
})();
