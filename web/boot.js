// Runs before the page paints: sets the colour theme (no flash of the wrong one), and starts
// collecting script errors so that the page can report them (and tests can read them from
// window.flowboardErrors).
(function () {
  var choice = 'auto';
  try { choice = localStorage.getItem('flowboard.theme') || 'auto'; } catch (e) { /* private mode */ }
  var dark = choice === 'dark' ||
    (choice === 'auto' && window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
  document.documentElement.dataset.themeChoice = choice;

  var errors = window.flowboardErrors = [];
  window.addEventListener('error', function (event) {
    errors.push(String(event.message || event.error || 'error'));
  });
  window.addEventListener('unhandledrejection', function (event) {
    var reason = event.reason;
    errors.push(String((reason && reason.message) || reason || 'unhandled rejection'));
  });
})();
