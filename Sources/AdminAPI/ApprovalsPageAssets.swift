/// The approvals page's stylesheet and script, served from the admin listener itself (no CDN,
/// no build step). The script only improves the page: without it, the forms post and redirect,
/// and a meta refresh reloads the list.
enum ApprovalsPageAssets {
    static let css = """
        :root { color-scheme: light; --fg: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8; --accent: #0b4f9c; --ok: #0a6b2d; --no: #9b1c1c; }
        * { box-sizing: border-box; }
        body { font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: #fff; margin: 0 auto; max-width: 70rem; padding: 0 1rem 3rem; }
        a { color: var(--accent); }
        :focus-visible { outline: 3px solid #f0b400; outline-offset: 2px; }
        .skip { position: absolute; left: -999px; }
        .skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; }
        header { display: flex; justify-content: space-between; align-items: center; flex-wrap: wrap; border-bottom: 1px solid var(--line); }
        .brand a { font-weight: 700; text-decoration: none; }
        .message { padding: .75rem; border-left: 4px solid var(--no); background: #fdf1f1; }
        .flash { padding: .75rem; border-left: 4px solid var(--ok); background: #eef8f1; }
        article.approval { border: 1px solid var(--line); border-radius: 6px; padding: 0 1rem 1rem; margin: 1rem 0; }
        pre.sql { background: #f5f5f5; padding: .75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
        .kw { color: #7a1f8a; font-weight: 700; } .str { color: #0a6b2d; } .num { color: #8a4b00; } .cm { color: var(--muted); font-style: italic; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
        dt { font-weight: 600; color: var(--muted); } dd { margin: 0; }
        .state { font-size: .85rem; color: var(--muted); font-weight: 400; }
        form.decide { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
        form.decide input[type=text] { flex: 1 1 20rem; padding: .4rem; font: inherit; border: 1px solid #767676; }
        button { font: inherit; padding: .4rem .9rem; border-radius: 4px; border: 1px solid #767676; background: #f4f4f4; cursor: pointer; }
        button.approve { background: var(--ok); color: #fff; border-color: var(--ok); }
        button.deny { background: var(--no); color: #fff; border-color: var(--no); }
        table { border-collapse: collapse; width: 100%; } th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .3rem; vertical-align: top; }
        .note, .empty { color: var(--muted); }
        """

    static let js = """
        'use strict';
        // Keeps the page current without a reload: the pending list every 3 seconds (replaced
        // only while nobody is typing a reason in it), the time left every second.
        (function () {
          var list = document.getElementById('pending');
          function pad(n) { return n; }
          function left(seconds) {
            seconds = Math.max(0, Math.floor(seconds));
            var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
            if (h > 0) return h + 'h ' + m + 'm';
            return m > 0 ? m + 'm ' + pad(s) + 's' : s + 's';
          }
          function tick() {
            var now = Date.now();
            document.querySelectorAll('time.time-left').forEach(function (t) {
              t.textContent = left((Date.parse(t.dataset.deadline) - now) / 1000);
            });
            document.querySelectorAll('time.age').forEach(function (t) {
              t.textContent = left((now - Date.parse(t.getAttribute('datetime'))) / 1000);
            });
          }
          function busy() {
            if (!list) return true;
            if (list.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return true;
            return Array.prototype.some.call(list.querySelectorAll('input[name=reason]'), function (i) { return i.value !== ''; });
          }
          function poll() {
            if (!list) return;
            fetch('/page/pending', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
              if (r.status === 401) { window.location.reload(); return null; }
              return r.ok ? r.text() : null;
            }).then(function (html) {
              if (html === null || busy()) return;
              if (list.innerHTML !== html) {
                // Server-rendered and escaped: the same markup the page itself is made of.
                list.innerHTML = html;
                var count = document.getElementById('pending-count');
                if (count) count.textContent = list.querySelectorAll('article.approval').length;
              }
              tick();
            }).catch(function () {});
          }
          tick();
          setInterval(tick, 1000);
          setInterval(poll, 3000);
        })();
        """
}
