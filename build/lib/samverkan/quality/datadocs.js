/* The two buttons of a Great Expectations validation page ("Show all" / "Failed only"), as a file.
 *
 * GE 1.24 defines these handlers in an inline <script> and calls them from onclick attributes;
 * the hub's Content-Security-Policy allows scripts from the hub only (no inline code), so
 * samverkan/quality/assets.py removes the inline script, turns each onclick="name()" into
 * data-samverkan-click="name", and loads this file. Same behaviour as GE's functions
 * (render/view/templates, Apache-2.0): fade the validations that succeeded out and back in.
 */
(function () {
  "use strict";

  var targets = [
    ".hide-succeeded-validation-target-child",
    ".hide-succeeded-validation-target",
    ".hide-succeeded-validations-column-section-target-child"
  ];

  function sections(fade) {
    $(targets[0]).parent()[fade]();
    $(targets[1])[fade]();
    $(targets[2]).parent().parent().each(function (idx, el) {
      $(el)[fade]();
      $('a[href$="' + el.id + '"]')[fade]();
    });
  }

  var handlers = {
    showAllValidations: function () { sections("fadeIn"); },
    hideSucceededValidations: function () { sections("fadeOut"); }
  };

  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-samverkan-click]");
    var handler = el && handlers[el.getAttribute("data-samverkan-click")];
    if (handler) {
      handler();
    }
  });
})();
