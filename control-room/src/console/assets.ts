/**
 * The console's own script and style, served from the app at /console/assets/ (no CDN, no build
 * step). The script is the only JavaScript the pages load: CSP allows `'self'` scripts and nothing
 * inline, and it never uses eval, innerHTML or string-built handlers: live values go in with
 * `textContent`, so nothing the server sends can become markup.
 */
export const CONSOLE_JS = String.raw`'use strict';
(function () {
  var meta = function (name) { var m = document.querySelector('meta[name="' + name + '"]'); return m ? m.getAttribute('content') : null; };
  var csrf = meta('orderly-csrf');
  var flash = document.getElementById('flash');
  function say(text, kind) {
    if (!flash) return;
    flash.textContent = text;
    flash.className = 'banner ' + (kind || 'info');
    flash.hidden = false;
  }

  // A one-time answer (an enrolment secret, a runner token, a revealed input): written into the
  // page as text, never into a URL, storage or the history; gone with the next page load.
  function show(answer) {
    var box = document.getElementById('shown');
    if (!box) return;
    while (box.firstChild) box.removeChild(box.firstChild);
    var h = document.createElement('h2');
    h.textContent = String(answer.title || '');
    box.appendChild(h);
    if (answer.note) { var p = document.createElement('p'); p.textContent = String(answer.note); box.appendChild(p); }
    (answer.items || []).forEach(function (item) {
      var label = document.createElement('h3');
      label.textContent = String(item.label);
      box.appendChild(label);
      if (typeof item.image === 'string' && /^\/console\/runs\/[0-9a-f-]+\/screenshots\/\d+\?/.test(item.image)) {
        var img = document.createElement('img');
        img.src = item.image;
        img.alt = String(item.label);
        img.width = 480;
        box.appendChild(img);
        return;
      }
      var pre = document.createElement('pre');
      pre.className = 'shown-value';
      pre.textContent = String(item.text);
      box.appendChild(pre);
    });
    box.hidden = false;
    box.scrollIntoView();
  }

  // Times: the viewer's zone on screen, UTC on hover (the title attribute the server wrote).
  document.querySelectorAll('time[datetime]').forEach(function (t) {
    var d = new Date(t.getAttribute('datetime'));
    if (!isNaN(d.getTime())) t.textContent = d.toLocaleString();
  });

  // Forms that change state go through fetch so they carry the session's CSRF header, which
  // no other site can set; the server answers with where to go next, or a coded error.
  document.addEventListener('submit', function (event) {
    var form = event.target;
    // getAttribute, not form.action/form.method: a field named "action" would shadow them.
    if (!(form instanceof HTMLFormElement) || (form.getAttribute('method') || '').toLowerCase() !== 'post') return;
    event.preventDefault();
    var submitter = event.submitter || null;
    var question = (submitter && submitter.getAttribute('data-confirm')) || form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) return;
    var body = new URLSearchParams(new FormData(form, submitter));
    var headers = { 'content-type': 'application/x-www-form-urlencoded' };
    if (csrf) headers['x-csrf-token'] = csrf;
    fetch(form.getAttribute('action') || window.location.pathname, { method: 'POST', headers: headers, body: body, credentials: 'same-origin', redirect: 'follow' }).then(function (res) {
      if (res.redirected) { window.location.assign(res.url); return undefined; }
      return res.json().then(function (answer) {
        if (answer && answer.redirect) { window.location.assign(answer.redirect); return; }
        if (res.ok && answer && answer.show) { form.reset(); show(answer.show); return; }
        var err = answer && answer.error;
        // A change that needs a fresh second factor: step up, then come back to this page.
        if (err && err.code === 'ORDERLY_E_STEP_UP_REQUIRED') { window.location.assign('/console/step-up?next=' + encodeURIComponent(window.location.pathname + window.location.search)); return; }
        say(err ? err.code + ': ' + err.message : 'The request failed (' + res.status + ')', 'error');
      }, function () { say('The request failed (' + res.status + ')', 'error'); });
    }, function () { say('The control room did not answer; try again.', 'error'); });
  });

  // Idle logoff: the server ends an idle session; the page warns a minute before and then
  // leaves, so a screen left open does not keep showing what it showed.
  var idle = Number(meta('orderly-idle-minutes'));
  if (idle > 0) {
    var limitMs = idle * 60000;
    var warnMs = Math.max(limitMs - 60000, limitMs * 0.75);
    setTimeout(function () { var w = document.getElementById('idle-warning'); if (w) w.hidden = false; }, warnMs);
    setTimeout(function () { window.location.assign('/console/login?reason=idle'); }, limitMs + 1000);
  }

  // Live overview: one event stream per session; values go in as text.
  var live = document.querySelector('[data-live-stream]');
  if (live && window.EventSource) {
    var source = new EventSource(live.getAttribute('data-live-stream'));
    source.addEventListener('overview', function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      var values = data.values || {};
      Object.keys(values).forEach(function (key) {
        document.querySelectorAll('[data-live="' + key.replace(/["\\]/g, '') + '"]').forEach(function (el) { el.textContent = String(values[key]); });
      });
      var list = document.getElementById('recent-runs');
      if (list && Array.isArray(data.recent)) {
        while (list.firstChild) list.removeChild(list.firstChild);
        data.recent.forEach(function (r) {
          var li = document.createElement('li');
          var a = document.createElement('a');
          a.href = '/console/runs/' + encodeURIComponent(r.id);
          a.textContent = r.bot + ' ' + r.version;
          var s = document.createElement('span');
          s.className = 'status status-' + String(r.status).replace(/[^a-z_]/g, '');
          s.textContent = r.status;
          li.appendChild(a); li.appendChild(document.createTextNode(' ')); li.appendChild(s);
          list.appendChild(li);
        });
      }
      live.setAttribute('data-live-seq', String(data.seq));
    });
    // Run detail: new log lines of the followed run, as text, at or above the page's level.
    var levels = ['debug', 'info', 'warn', 'error'];
    var minLevel = levels.indexOf(live.getAttribute('data-level') || 'debug');
    source.addEventListener('log', function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      var pre = document.querySelector('pre.log');
      if (!pre) return;
      (data.lines || []).forEach(function (l) {
        if (levels.indexOf(l.level) < minLevel) return;
        var span = document.createElement('span');
        span.className = 'level-' + String(l.level).replace(/[^a-z]/g, '');
        span.textContent = l.at + ' ' + String(l.level).toUpperCase() + ' [' + l.source + '] ' + l.msg;
        pre.appendChild(span); pre.appendChild(document.createTextNode('\n'));
        pre.hidden = false;
        var empty = document.getElementById('log-empty');
        if (empty) empty.hidden = true;
      });
      if (['succeeded', 'failed', 'dead_lettered', 'cancelled', 'discarded'].indexOf(data.status) >= 0) {
        live.textContent = 'The run has ended (' + data.status + '): the log is complete.';
        source.close();
      }
    });
    source.addEventListener('expired', function () { source.close(); window.location.assign('/console/login?reason=expired'); });
  }
})();
`;

export const CONSOLE_CSS = `
:root { --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de; --accent: #0a4fa3; --warn-bg: #fff4d6; --err-bg: #ffe3e3; --ok-bg: #e3f7e8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus { outline: 3px solid #f0a500; outline-offset: 1px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px; }
.top { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; padding: 8px 16px; border-bottom: 1px solid var(--line); background: #f6f8fa; }
.brand { font-weight: 700; }
nav ul { list-style: none; display: flex; gap: 12px; margin: 0; padding: 0; flex-wrap: wrap; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; }
.logout { margin-left: auto; } .who { color: var(--muted); }
main { padding: 16px; max-width: 1200px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
.banner { padding: 8px 16px; margin: 8px 16px; border-radius: 4px; background: #eef4ff; }
.banner.warn { background: var(--warn-bg); } .banner.error { background: var(--err-bg); } .banner.ok { background: var(--ok-bg); }
.muted, .empty { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 220px; }
.card dl { display: grid; grid-template-columns: auto auto; gap: 2px 12px; margin: 0; }
.card dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
form.inline { display: inline; }
form.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 8px; }
label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
input, select, button { font: inherit; padding: 3px 6px; }
button { cursor: pointer; border: 1px solid #8c959f; border-radius: 4px; background: #f6f8fa; color: var(--fg); }
button.danger { border-color: #a40e26; color: #a40e26; }
pre.log { background: #f6f8fa; padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.level-warn { color: #7d4e00; } .level-error { color: #a40e26; }
.status { font-weight: 600; }
.login { max-width: 360px; display: flex; flex-direction: column; gap: 8px; }
.shown { border: 2px solid var(--accent); background: #fff; } pre.shown-value { background: #f6f8fa; padding: 8px; white-space: pre-wrap; word-break: break-all; }
.overdue { color: #a40e26; } label.check { flex-direction: row; color: var(--fg); }
textarea { font: 13px/1.3 ui-monospace, monospace; }
`;
