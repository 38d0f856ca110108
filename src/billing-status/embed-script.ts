/**
 * The script a merchant's page includes to show the billing banner:
 *
 *   <script src="<PUBLIC_URL>/embed/billing-banner.js" data-token="<token>" async></script>
 *
 * It asks this worker (the origin it was loaded from) for the status behind the token and shows one
 * line and a link at the top of the page (or inside the element `data-target` selects), nothing
 * when the status is ok or the token is no good. Text is set with textContent, never as HTML, and
 * only http(s) links are used. It asks again when the tab becomes visible, so a customer who
 * updated their card in another tab sees the banner go. Plain ES2017, no dependencies.
 */
export const EMBED_SCRIPT = `(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var token = script.getAttribute('data-token') || '';
  var base = script.src.replace(/\\/embed\\/billing-banner\\.js(?:[?#].*)?$/, '');
  var targetSelector = script.getAttribute('data-target');
  var banner = null;

  function remove() {
    if (banner && banner.parentNode) banner.parentNode.removeChild(banner);
    banner = null;
  }

  function show(s) {
    remove();
    if (!s || s.status === 'ok' || !s.banner) return;
    var box = document.createElement('div');
    box.id = 'dunning-billing-banner';
    box.setAttribute('role', 'alert');
    box.setAttribute('data-status', s.status);
    box.setAttribute('lang', s.locale || 'en');
    box.style.cssText = 'box-sizing:border-box;width:100%;padding:10px 16px;background:#fff4e5;color:#663c00;' +
      'border-bottom:1px solid #f0c36d;font:14px/1.4 system-ui,sans-serif;text-align:center';
    var text = document.createElement('span');
    text.textContent = s.banner + ' ';
    box.appendChild(text);
    if (s.link && /^https?:\\/\\//.test(s.link.url)) {
      var a = document.createElement('a');
      a.href = s.link.url;
      a.textContent = s.link.label;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.setAttribute('data-kind', s.link.kind);
      a.style.cssText = 'color:inherit;font-weight:600;text-decoration:underline';
      box.appendChild(a);
    }
    var target = targetSelector ? document.querySelector(targetSelector) : null;
    if (target) target.appendChild(box);
    else document.body.insertBefore(box, document.body.firstChild);
    banner = box;
  }

  function refresh() {
    if (!token || !window.fetch) return;
    fetch(base + '/embed/billing-status?token=' + encodeURIComponent(token), { credentials: 'omit', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(show, function () { /* the merchant's page must not break because we are unreachable */ });
  }

  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') refresh();
  });
  if (document.body) refresh();
  else document.addEventListener('DOMContentLoaded', refresh);
})();
`;
