/* Quillnote's one shared script: the narrow-screen menu. No build step, no dependencies. */
(function () {
  var toggle = document.querySelector('.nav-toggle');
  var menu = document.getElementById('nav-menu');
  if (!toggle || !menu) { return; }
  toggle.addEventListener('click', function () {
    var open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    menu.classList.toggle('open', open);
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && menu.classList.contains('open')) {
      menu.classList.remove('open');
      toggle.setAttribute('aria-expanded', 'false');
      toggle.focus();
    }
  });
})();

/* A billing change sent from a form marked data-awaits: remember the billing revision the
   page showed, so the billing page can tell when Stripe's confirmation has been projected
   (see live-billing.js). */
(function () {
  document.addEventListener('submit', function (event) {
    var form = event.target.closest ? event.target.closest('form[data-awaits]') : null;
    if (!form || !document.body.dataset.revision) { return; }
    try {
      sessionStorage.setItem('quillnote.awaiting', JSON.stringify({
        what: form.dataset.awaits, revision: document.body.dataset.revision, at: Date.now()
      }));
    } catch (ignored) { /* storage off: the billing page simply shows what it has */ }
  });
})();
