// The viewer's live page: new alerts arrive over server-sent events (each
// one rendered and escaped by the server), counts update, and the account
// filter hides what does not match. No alert data is ever parsed as code:
// ids reach the page as escaped text inside the server's HTML.
(function () {
  'use strict';
  var list = document.getElementById('alerts');
  var filter = document.getElementById('account');
  var state = document.getElementById('live-state');
  var empty = document.getElementById('empty');
  var maxShown = 200;

  function matches(li) {
    var q = filter.value.toLowerCase();
    if (!q) { return true; }
    return li.dataset.from.toLowerCase().indexOf(q) >= 0 || li.dataset.to.toLowerCase().indexOf(q) >= 0;
  }
  function applyFilter() {
    var shown = 0;
    list.querySelectorAll('li.alert').forEach(function (li) {
      li.hidden = !matches(li);
      if (!li.hidden) { shown++; }
    });
    document.getElementById('shown').textContent = String(shown);
  }
  filter.addEventListener('input', applyFilter);
  filter.form.addEventListener('submit', function (e) { e.preventDefault(); applyFilter(); });

  function setText(id, value) { document.getElementById(id).textContent = String(value); }
  function showStats(s) {
    setText('total', s.total);
    setText('per-minute', s.perMinute);
    var rules = document.getElementById('rules');
    rules.replaceChildren();
    s.rules.forEach(function (r) {
      var li = document.createElement('li');
      var b = document.createElement('b');
      b.textContent = String(r.count);
      li.append(b, ' ' + r.rule);
      rules.append(li);
    });
  }

  var url = new URL(window.location.href);
  url.search = '';
  url.searchParams.set('events', '1');
  url.searchParams.set('since', list.dataset.seq);
  var es = new EventSource(url.toString());
  es.addEventListener('open', function () { state.textContent = 'live'; state.className = 'on'; });
  es.addEventListener('error', function () { state.textContent = 'reconnecting'; state.className = 'off'; });
  es.addEventListener('alert', function (e) {
    var d = JSON.parse(e.data);
    var t = document.createElement('template');
    t.innerHTML = d.html;
    var li = t.content.firstElementChild;
    li.classList.add('new');
    li.hidden = !matches(li);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > maxShown) { list.removeChild(list.lastChild); }
    list.dataset.seq = String(d.seq);
    empty.hidden = true;
    applyFilter();
  });
  es.addEventListener('stats', function (e) { showStats(JSON.parse(e.data)); });
  applyFilter();
}());
