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
