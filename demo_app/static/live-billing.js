/* The billing page follows Stripe without a reload.
 *
 * After a change (plan swap, seats, pause, cancel, or a return from the billing portal) the
 * page polls the same status endpoint as the success page until the billing revision it
 * reports differs from the one the page showed when the change was sent. Meanwhile it says
 * it is waiting for Stripe's confirmation; then it re-renders the parts marked data-live
 * (banner, plan badge, plan card, operations and invoices) and keeps polling for a few
 * seconds, since one change often brings several webhooks (subscription, then invoice).
 */
(function () {
  var KEY = 'quillnote.awaiting';
  var statusUrl = document.body.dataset.statusUrl;
  var notice = document.querySelector('[data-testid="billing-waiting"]');
  var message = notice && notice.querySelector('[data-live-message]');
  if (!statusUrl || !notice || !message) { return; }

  var awaiting = null;
  try { awaiting = JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (ignored) { awaiting = null; }
  if (!awaiting && notice.dataset.pending === 'checkout') {
    // Stripe reported a completed Checkout that is not projected yet: wait for it here too.
    awaiting = {what: 'checkout', revision: document.body.dataset.revision, at: Date.now()};
  }
  if (!awaiting || !awaiting.revision || Date.now() - awaiting.at > 5 * 60 * 1000) {
    forget();
    return;
  }
  var portal = awaiting.what === 'portal';
  var limit = portal ? 30 : 90;  // seconds to wait for a first confirmation
  var settleChecks = 5;          // quiet polls after the last change before stopping

  function forget() { try { sessionStorage.removeItem(KEY); } catch (ignored) { /* nothing kept */ } }

  function say(text, tone, busy) {
    notice.hidden = false;
    notice.className = 'notice notice-' + tone + ' live-status';
    notice.querySelector('.dot').hidden = !busy;
    notice.setAttribute('aria-busy', busy ? 'true' : 'false');
    message.textContent = text;
  }

  function status() {
    return fetch(statusUrl, {headers: {Accept: 'application/json'}, cache: 'no-store', credentials: 'same-origin'})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); });
  }

  function rerender() {
    return fetch(window.location.pathname, {cache: 'no-store', credentials: 'same-origin'})
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (old) {
          var name = old.getAttribute('data-live');
          var replacement = fresh.querySelector('[data-live="' + name + '"]');
          if (replacement) { old.replaceWith(document.importNode(replacement, true)); }
        });
        if (fresh.body.dataset.revision) { document.body.dataset.revision = fresh.body.dataset.revision; }
      });
  }

  function settle(seen, quiet) {
    if (quiet >= settleChecks) { return; }
    setTimeout(function () {
      status().then(function (body) {
        if (body.revision !== seen) {
          return rerender().then(function () { settle(body.revision, 0); });
        }
        settle(seen, quiet + 1);
      }).catch(function () { settle(seen, quiet + 1); });
    }, 1000);
  }

  function confirmed() {
    forget();
    say('Stripe confirmed the change; this page now shows it.', 'success', false);
    notice.dataset.state = 'confirmed';
  }

  function wait(tries) {
    if (tries >= limit) {
      forget();
      notice.dataset.state = 'timeout';
      say(portal
        ? 'No change from the billing portal has been confirmed yet. If you made one, it shows here once Stripe confirms it; you can leave this page.'
        : 'Stripe has not confirmed the change yet. It is safe with Stripe and shows here once confirmed; you can leave this page and come back.',
        'warning', false);
      return;
    }
    status().then(function (body) {
      if (body.revision !== awaiting.revision) {
        return rerender().then(function () { confirmed(); settle(body.revision, 0); });
      }
      setTimeout(function () { wait(tries + 1); }, 1000);
    }).catch(function () { setTimeout(function () { wait(tries + 2); }, 2000); });
  }

  if (document.body.dataset.revision !== awaiting.revision) {
    // Projected before this page was rendered: it is current; catch any follow-up webhooks.
    forget();
    settle(document.body.dataset.revision, 0);
    return;
  }
  notice.dataset.state = 'waiting';
  if (awaiting.what !== 'checkout') {
    say(portal ? 'Checking for changes made in the billing portal: waiting for Stripe\'s confirmation…'
               : 'Waiting for Stripe\'s confirmation…', 'info', true);
  }
  wait(0);
})();
