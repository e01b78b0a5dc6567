// Applies the saved theme before the first paint, so a user who chose the opposite of
// the system scheme never sees a flash. A classic script: modules run too late for this.
(function () {
  var t = null;
  try { t = localStorage.getItem("theme"); } catch (e) { t = null; }
  if (t !== "dark" && t !== "light") {
    t = window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }
  document.documentElement.dataset.theme = t;
})();
