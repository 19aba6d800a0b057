// Refund form: choosing an item or typing a quantity means "Selected items",
// and typing an amount means "Amount". The server decides everything else.
// Listeners run in the capture phase, before htmx (on the form) reads the values.
(function () {
  "use strict";

  function chooseKind(form, kind) {
    var radio = form.querySelector('input[name="kind"][value="' + kind + '"]');
    if (radio && !radio.checked) {
      radio.checked = true;
    }
  }

  document.addEventListener("input", function (event) {
    var input = event.target;
    var form = input.closest("#refund-form");
    if (!form) {
      return;
    }
    var match = /^line-(\d+)-quantity$/.exec(input.name || "");
    if (match) {
      var box = form.querySelector('input[name="line-' + match[1] + '-selected"]');
      if (box) {
        box.checked = input.value !== "" && input.value !== "0";
      }
      chooseKind(form, "items");
    } else if (input.name === "amount" && input.value !== "") {
      chooseKind(form, "amount");
    }
  }, true);

  document.addEventListener("change", function (event) {
    var input = event.target;
    var form = input.closest("#refund-form");
    if (form && /^line-\d+-selected$/.test(input.name || "") && input.checked) {
      chooseKind(form, "items");
    }
  }, true);
})();
