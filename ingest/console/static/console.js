// The console's only script (served from /console/static/; the CSP allows no inline script).
// Confirm before revealing customer data in the raw body: the reveal is logged.
document.addEventListener("DOMContentLoaded", function () {
  var reveal = document.getElementById("reveal");
  if (reveal) {
    reveal.addEventListener("click", function (e) {
      if (!window.confirm("Show customer emails unmasked? This is logged.")) e.preventDefault();
    });
  }
});
