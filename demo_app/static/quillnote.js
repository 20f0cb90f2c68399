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

/* A billing change sent from a form marked data-awaits: remember the billing revision just
   before it is sent (fresh from the status endpoint: the page's own may be stale), so the
   billing page can tell when Stripe's confirmation has been projected (see live-billing.js). */
(function () {
  var body = document.body;
  function remember(what, revision) {
    try {
      sessionStorage.setItem('quillnote.awaiting', JSON.stringify({what: what, revision: revision, at: Date.now()}));
    } catch (ignored) { /* storage off: the billing page simply shows what it has */ }
  }
  document.addEventListener('submit', function (event) {
    var form = event.target.closest ? event.target.closest('form[data-awaits]') : null;
    if (!form || !body.dataset.revision || !body.dataset.statusUrl || form.dataset.sending) { return; }
    event.preventDefault();
    form.dataset.sending = 'true';
    var sent = false;
    function send(revision) {
      if (sent) { return; }
      sent = true;
      remember(form.dataset.awaits, revision || body.dataset.revision);
      form.submit();
    }
    setTimeout(send, 1500);  // a slow status answer never holds the change back
    fetch(body.dataset.statusUrl, {headers: {Accept: 'application/json'}, cache: 'no-store', credentials: 'same-origin'})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (status) { send(status.revision); })
      .catch(function () { send(null); });
  });
})();
