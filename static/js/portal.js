// Merchant portal: small progressive enhancements (everything works without them).
(function () {
  "use strict";

  // The Settings menu (<details>) closes on a click outside it or on Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.removeAttribute("open");
      }
    });
  });
  // A table wider than the screen scrolls sideways inside its wrapper: the
  // wrapper takes keyboard focus so it can be scrolled without a mouse (WCAG
  // 2.1.1; axe's scrollable-region-focusable).
  function focusableScrollers() {
    document.querySelectorAll(".table-wrap, pre").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
      }
    });
  }
  // A page the browser restores from its back-forward cache shows the order as
  // it was when it was left, with any button htmx disabled for a request that
  // then redirected (a confirmed refund) still disabled: load it again, so the
  // amounts and forms are the current ones.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });
  document.addEventListener("DOMContentLoaded", focusableScrollers);
  document.addEventListener("htmx:afterSettle", focusableScrollers);
  window.addEventListener("resize", focusableScrollers);

  // A live response (the refund preview, the order search) swaps in each
  // field's error slot (id "<field id>_error", portal.widgets.error_slots),
  // not the field: the field is marked invalid and described by its slot
  // here, as Django marks it when the whole form is rendered (aria-invalid,
  // aria-describedby), and unmarked when the slot is empty again.
  function describeErrors() {
    document.querySelectorAll('.field-errors[id$="_error"]').forEach(function (slot) {
      var field = document.getElementById(slot.id.slice(0, -"_error".length));
      if (!field || !/^(INPUT|SELECT|TEXTAREA)$/.test(field.tagName)) {
        return;
      }
      var ids = (field.getAttribute("aria-describedby") || "").split(/\s+/)
        .filter(function (id) { return id && id !== slot.id; });
      if (slot.textContent.trim() !== "") {
        field.setAttribute("aria-invalid", "true");
        ids.push(slot.id);
      } else {
        field.removeAttribute("aria-invalid");
      }
      if (ids.length) {
        field.setAttribute("aria-describedby", ids.join(" "));
      } else {
        field.removeAttribute("aria-describedby");
      }
    });
  }
  document.addEventListener("htmx:afterSettle", describeErrors);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
})();
