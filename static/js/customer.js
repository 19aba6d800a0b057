// Customer pages: small progressive enhancements; every page works without this.
(function () {
  "use strict";

  // The login code field keeps digits only (people paste "123 456" from email).
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches(".c-code-input input")) return;
    var digits = input.value.replace(/\D/g, "").slice(0, 6);
    if (digits !== input.value) input.value = digits;
  });
})();
