// Refund form: choosing an item or typing a quantity means "Selected items"
// (unless "with a return fee" is chosen), and typing an amount means "Amount".
// The server decides everything else. Listeners run in the capture phase,
// before htmx (on the form) reads the values.
(function () {
  "use strict";

  function chooseKind(form, kind) {
    var radio = form.querySelector('input[name="kind"][value="' + kind + '"]');
    if (radio && !radio.checked) {
      radio.checked = true;
    }
  }

  function chooseItems(form) {
    var fee = form.querySelector('input[name="kind"][value="items_fee"]');
    if (!(fee && fee.checked)) {
      chooseKind(form, "items");
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
      chooseItems(form);
    } else if (input.name === "amount" && input.value !== "") {
      chooseKind(form, "amount");
    }
  }, true);

  document.addEventListener("change", function (event) {
    var input = event.target;
    var form = input.closest("#refund-form");
    if (form && /^line-\d+-selected$/.test(input.name || "") && input.checked) {
      chooseItems(form);
    }
  }, true);

  // Previews are queued, never aborted (an aborted request is a console error
  // in htmx). A preview answered after the form changed again is superseded:
  // the queued request for the newer state will answer, so it is not shown.
  function formState(form) {
    var pairs = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "expected_fingerprint" && name !== "csrfmiddlewaretoken") {
        pairs.push(name + "=" + value);
      }
    });
    return pairs.join("&");
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.target.closest && event.target.closest("#refund-form");
    if (form) {
      event.detail.xhr.refundFormState = formState(form);
    }
  });

  // The email preview stays open (or closed) as the merchant left it when a
  // new preview replaces it: a click that opened it just before a refresh
  // (the "change" of the field being left) is not undone.
  var emailPreviewOpen = false;
  document.addEventListener("toggle", function (event) {
    if (event.target.id === "email-preview") {
      emailPreviewOpen = event.target.open;
    }
  }, true);

  // The toggle event of an element a swap has just removed never reaches the
  // document, so the click says it first.
  document.addEventListener("click", function (event) {
    var summary = event.target.closest && event.target.closest("#email-preview > summary");
    if (summary) {
      emailPreviewOpen = !summary.parentElement.open;
    }
  }, true);

  document.addEventListener("htmx:afterSwap", function () {
    var details = document.getElementById("email-preview");
    if (details && emailPreviewOpen && !details.open) {
      details.open = true;
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = document.getElementById("refund-form");
    var sent = event.detail.xhr.refundFormState;
    var isPreview = event.detail.target && event.detail.target.id === "refund-preview";
    if (form && isPreview && sent !== undefined && sent !== formState(form)) {
      event.detail.shouldSwap = false;
    }
  });
})();
