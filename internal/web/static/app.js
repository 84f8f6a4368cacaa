// Postern's only script: the account menu, confirmation dialogs, the Copy
// button, and the browser's time zone for server-rendered dates. Served from
// our origin (CSP script-src 'self'); the pages work without it.
'use strict';

(function timeZone() {
  var tz;
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!tz || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(tz)) return;
  // The sign-in form carries it: the member's zone until they choose one.
  document.addEventListener('DOMContentLoaded', function () {
    Array.prototype.forEach.call(document.querySelectorAll('input.js-timezone'), function (i) { i.value = tz; });
  });
  var had = document.cookie.split('; ').indexOf('postern_tz=' + tz) >= 0;
  if (had) return;
  document.cookie = 'postern_tz=' + tz + '; path=/; max-age=31536000; SameSite=Lax' +
    (location.protocol === 'https:' ? '; Secure' : '');
  // Show the times of this page in the zone just learnt, once.
  if (document.querySelector('time') && document.cookie.indexOf('postern_tz=') >= 0 &&
      !sessionStorage.getItem('postern_tz_reloaded')) {
    sessionStorage.setItem('postern_tz_reloaded', '1');
    location.reload();
  }
})();

document.addEventListener('DOMContentLoaded', function () {
  accountMenu();
  confirmForms();
  copyButtons();
});

function accountMenu() {
  var button = document.getElementById('account-button');
  var menu = document.getElementById('account-menu');
  if (!button || !menu) return;
  var items = function () { return Array.prototype.slice.call(menu.querySelectorAll('[role="menuitem"]')); };
  function open(focusFirst) {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    if (focusFirst) items()[0].focus();
  }
  function close(focusButton) {
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (focusButton) button.focus();
  }
  button.addEventListener('click', function () {
    if (menu.hidden) open(false); else close(false);
  });
  button.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowDown' || e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open(true);
    }
  });
  menu.addEventListener('keydown', function (e) {
    var list = items();
    var i = list.indexOf(document.activeElement);
    if (e.key === 'Escape') { e.preventDefault(); close(true); }
    else if (e.key === 'ArrowDown') { e.preventDefault(); list[(i + 1) % list.length].focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); list[(i - 1 + list.length) % list.length].focus(); }
    else if (e.key === 'Home') { e.preventDefault(); list[0].focus(); }
    else if (e.key === 'End') { e.preventDefault(); list[list.length - 1].focus(); }
    else if (e.key === 'Tab') { close(false); }
  });
  document.addEventListener('click', function (e) {
    if (!menu.hidden && !menu.contains(e.target) && !button.contains(e.target)) close(false);
  });
}

// A form with class js-confirm asks in its <dialog> first; without script
// the server shows a confirmation page instead.
function confirmForms() {
  Array.prototype.forEach.call(document.querySelectorAll('form.js-confirm'), function (form) {
    var dialog = document.getElementById(form.getAttribute('data-dialog'));
    if (!dialog || typeof dialog.showModal !== 'function') return;
    form.addEventListener('submit', function (e) {
      var confirmed = form.querySelector('input[name="confirmed"]');
      if (confirmed.value === '1') return;
      e.preventDefault();
      var name = dialog.querySelector('.dialog-name');
      if (name) name.textContent = form.getAttribute('data-name') || '';
      dialog.returnForm = form;
      dialog.showModal();
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('dialog'), function (dialog) {
    var ok = dialog.querySelector('[data-confirm]');
    var cancel = dialog.querySelector('[data-cancel]');
    if (ok) ok.addEventListener('click', function () {
      var form = dialog.returnForm;
      if (!form) return;
      form.querySelector('input[name="confirmed"]').value = '1';
      dialog.close();
      form.submit();
    });
    if (cancel) cancel.addEventListener('click', function () { dialog.close(); });
  });
}

function copyButtons() {
  Array.prototype.forEach.call(document.querySelectorAll('button[data-copy]'), function (button) {
    var source = document.getElementById(button.getAttribute('data-copy'));
    var status = document.querySelector('.copy-status');
    button.addEventListener('click', function () {
      var text = source.getAttribute('data-password') || source.textContent;
      function selectIt() {
        var range = document.createRange();
        range.selectNodeContents(source);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () {
          if (status) status.textContent = button.getAttribute('data-copied');
          button.classList.add('done');
        }, function () {
          selectIt();
          if (status) status.textContent = button.getAttribute('data-failed');
        });
      } else {
        selectIt();
        if (status) status.textContent = button.getAttribute('data-failed');
      }
    });
  });
}
