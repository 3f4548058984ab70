/* MOBIP checkout: formatting as you type, a progressive enhancement of the card form, and the
 * confirmation page's automatic continuation to the merchant.
 * The page works the same without it (the server accepts "4242424242424242" and "1234",
 * formatted or not). It formats the card number in groups (4-6-5 for American Express), shows
 * the brand detected from the first digits (the prefix rules of mobip/transactions/cards.py), writes
 * the expiry as "MM / YY" and keeps only digits in the CVC. No library, nothing sent anywhere.
 */
(function () {
  "use strict";

  var BRANDS = {
    visa: "Visa", mastercard: "Mastercard", amex: "American Express", discover: "Discover",
    diners: "Diners Club", jcb: "JCB", unionpay: "UnionPay"
  };

  function between(value, low, high) {
    return value.length === low.length && value >= low && value <= high;
  }

  /* The same rules as cards.brand_of, in the same order. */
  function brandOf(number) {
    var two = number.slice(0, 2), three = number.slice(0, 3), four = number.slice(0, 4);
    if (number.charAt(0) === "4") return "visa";
    if (two === "34" || two === "37") return "amex";
    if (between(two, "51", "55") || between(four, "2221", "2720")) return "mastercard";
    if (four === "6011" || two === "65" || between(three, "644", "649")) return "discover";
    if (two === "36" || two === "38" || two === "39" || between(three, "300", "305")) return "diners";
    if (between(four, "3528", "3589")) return "jcb";
    if (two === "62") return "unionpay";
    return "card";
  }

  function digits(value) {
    return value.replace(/\D/g, "");
  }

  function groupsOf(number, brand) {
    var sizes = brand === "amex" ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var parts = [], at = 0;
    for (var i = 0; i < sizes.length && at < number.length; i++) {
      parts.push(number.slice(at, at + sizes[i]));
      at += sizes[i];
    }
    return parts.join(" ");
  }

  /* Rewrites an input's value, keeping the caret after the same number of digits. */
  function rewrite(input, formatted) {
    var caret = input.selectionStart === null ? input.value.length : input.selectionStart;
    var digitsBefore = digits(input.value.slice(0, caret)).length;
    if (formatted === input.value) return;
    input.value = formatted;
    var position = 0, seen = 0;
    while (position < formatted.length && seen < digitsBefore) {
      if (/\d/.test(formatted.charAt(position))) seen++;
      position++;
    }
    if (document.activeElement === input) input.setSelectionRange(position, position);
  }

  function formatNumber(input, brandLabel) {
    var number = digits(input.value).slice(0, 19);
    var brand = brandOf(number);
    rewrite(input, groupsOf(number, brand));
    var name = number.length > 0 ? BRANDS[brand] || "" : "";
    if (brandLabel.textContent !== name) brandLabel.textContent = name;
    input.setAttribute("data-brand", number.length > 0 ? brand : "");
  }

  function formatExpiry(input, event) {
    var typed = digits(input.value).slice(0, 4);
    var deleting = event && event.inputType && event.inputType.indexOf("delete") === 0;
    if (typed.length === 1 && typed > "1" && !deleting) typed = "0" + typed;
    var formatted = typed;
    if (typed.length > 2 || (typed.length === 2 && !deleting)) {
      formatted = typed.slice(0, 2) + " / " + typed.slice(2);
    }
    rewrite(input, formatted);
  }

  function formatCvc(input) {
    rewrite(input, digits(input.value).slice(0, 4));
  }

  function start() {
    var number = document.getElementById("card_number");
    var brandLabel = document.getElementById("card_brand");
    var expiry = document.getElementById("expiry");
    var cvc = document.getElementById("cvc");
    if (number && brandLabel) {
      number.addEventListener("input", function () { formatNumber(number, brandLabel); });
      formatNumber(number, brandLabel);
    }
    if (expiry) {
      expiry.addEventListener("input", function (event) { formatExpiry(expiry, event); });
    }
    if (cvc) {
      cvc.addEventListener("input", function () { formatCvc(cvc); });
    }
    continueLater();
  }

  /* The confirmation page right after paying: on to the merchant after a few seconds, unless
   * the customer chooses to stay (WCAG 2.2.1: a time limit the user can turn off). Without
   * the script the page simply offers its button. */
  function continueLater() {
    var link = document.getElementById("continue");
    var notice = document.getElementById("continue-notice");
    var stay = document.getElementById("stay");
    var seconds = link ? parseInt(link.getAttribute("data-continue-after") || "", 10) : NaN;
    if (!link || !notice || !stay || !(seconds > 0)) return;
    var timer = window.setTimeout(function () { window.location.assign(link.href); }, seconds * 1000);
    notice.hidden = false;
    stay.addEventListener("click", function () {
      window.clearTimeout(timer);
      notice.hidden = true;
      link.focus();
    });
  }

  window.mobipCheckout = { brandOf: brandOf };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
