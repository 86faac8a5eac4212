// flowtrace view: the waterfall of the traces embedded in this page.
// Rows are virtualized: only the rows in sight are in the DOM.
(function () {
  'use strict';

  var ROW = 24;
  var OVERSCAN = 12;
  var RUN_LIST_MAX = 2000;

  // --- data ---------------------------------------------------------------
  var traces = [];
  var resources = new Map();
  var scopes = new Map();
  document.querySelectorAll('script[type="application/json"]').forEach(function (el) {
    var data = JSON.parse(el.textContent);
    if (el.classList.contains('ft-trace')) traces.push(data);
    else if (el.classList.contains('ft-resource')) resources.set(data.id, data);
    else if (el.classList.contains('ft-scope')) scopes.set(data.id, data);
  });
  traces.forEach(prepare);

  // span id (hex) → [trace index, span index], for links.
  var bySpanId = new Map();
  traces.forEach(function (t, ti) {
    t.spans.forEach(function (s, si) { bySpanId.set(t.id + '/' + s.id, [ti, si]); });
  });

  function prepare(t) {
    var n = t.spans.length;
    t.kids = new Uint32Array(n);       // number of children
    t.end = new Uint32Array(n);        // one past the last descendant (depth-first order)
    t.expanded = new Uint8Array(n);
    for (var i = 0; i < n; i++) t.end[i] = i + 1;
    for (i = n - 1; i >= 0; i--) {
      var p = t.spans[i].parent;
      if (p >= 0) {
        t.kids[p]++;
        if (t.end[i] > t.end[p]) t.end[p] = t.end[i];
      }
    }
    collapseToTop(t);
    t.errors = 0;
    t.critical = 0;
    for (i = 0; i < n; i++) {
      if (t.spans[i].status === 2) t.errors++;
      if (t.spans[i].critical) t.critical++;
    }
    t.title = t.runName || (n ? t.spans[0].name : t.id);
  }

  function collapseToTop(t) {
    for (var i = 0; i < t.spans.length; i++) t.expanded[i] = t.spans[i].depth < 2 ? 1 : 0;
  }

  // --- state --------------------------------------------------------------
  var current = -1;        // trace index
  var selected = -1;       // span index in the current trace
  var rows = [];           // visible span indices
  var view = [0, 1];       // zoom window, ns from the trace start
  var query = '';
  var matches = null;      // Uint8Array of matching spans in the current trace, or null
  var keep = null;         // matches and their ancestors

  var $ = function (id) { return document.getElementById(id); };
  var viewport = $('viewport'), spacer = $('spacer'), rowsEl = $('rows');

  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) for (var k in props) {
      if (k === 'text') el.textContent = props[k];
      else if (k === 'className') el.className = props[k];
      else el.setAttribute(k, props[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null) continue;
      el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return el;
  }

  function fmt(ns) {
    if (ns < 1e6) return Math.floor(ns / 1000) + ' µs';
    if (ns < 1e9) return (ns / 1e6).toFixed(1) + ' ms';
    if (ns < 1e11) return (ns / 1e9).toFixed(2) + ' s';
    return (ns / 1e9).toFixed(0) + ' s';
  }

  function valueText(v) {
    if (typeof v === 'string') return v;
    return JSON.stringify(v);
  }

  // --- runs ---------------------------------------------------------------
  function renderRuns() {
    var list = $('run-list');
    list.textContent = '';
    $('run-count').textContent = '(' + traces.length + ')';
    if (traces.length <= 1) document.body.classList.add('single');
    traces.slice(0, RUN_LIST_MAX).forEach(function (t, ti) {
      var meta = [new Date(t.startMs).toISOString().replace('T', ' ').replace('Z', ''), fmt(t.duration), t.spans.length + ' spans'];
      var li = h('li', { 'data-trace': ti },
        h('div', { className: 'run-name', text: t.title }),
        h('div', { className: 'run-meta', text: (t.run ? 'run ' + t.run + ' · ' : '') + meta.join(' · ') }));
      if (t.errors) li.firstChild.appendChild(h('span', { className: 'errors-badge', text: String(t.errors) }));
      li.addEventListener('click', function () { showTrace(ti); });
      list.appendChild(li);
    });
    if (traces.length > RUN_LIST_MAX) {
      list.appendChild(h('li', { className: 'more', text: (traces.length - RUN_LIST_MAX) + ' more runs: search to find one' }));
    }
  }

  function markRuns() {
    var items = $('run-list').children;
    for (var i = 0; i < items.length; i++) {
      var ti = Number(items[i].getAttribute('data-trace'));
      if (isNaN(ti)) continue;
      items[i].classList.toggle('selected', ti === current);
      var badge = items[i].querySelector('.match-badge');
      if (badge) badge.remove();
      if (query) {
        var count = countMatches(traces[ti]);
        items[i].classList.toggle('hidden', count === 0);
        if (count) items[i].firstChild.appendChild(h('span', { className: 'match-badge', text: String(count) }));
      } else {
        items[i].classList.remove('hidden');
      }
    }
  }

  // --- search -------------------------------------------------------------
  function spanMatches(s) {
    if (s.name.toLowerCase().indexOf(query) >= 0) return true;
    for (var i = 0; i < s.attributes.length; i++) {
      var a = s.attributes[i];
      if ((a[0] + '=' + valueText(a[1])).toLowerCase().indexOf(query) >= 0) return true;
    }
    return false;
  }

  function countMatches(t) {
    var n = 0;
    for (var i = 0; i < t.spans.length; i++) if (spanMatches(t.spans[i])) n++;
    return n;
  }

  function applySearch() {
    query = $('search').value.trim().toLowerCase();
    matches = keep = null;
    var total = 0, runs = 0;
    if (query) {
      traces.forEach(function (t) { var c = countMatches(t); total += c; if (c) runs++; });
      $('search-count').textContent = total + (total === 1 ? ' match' : ' matches') + (traces.length > 1 ? ' in ' + runs + (runs === 1 ? ' run' : ' runs') : '');
      if (current >= 0 && countMatches(traces[current]) === 0) {
        for (var ti = 0; ti < traces.length; ti++) if (countMatches(traces[ti])) { current = ti; break; }
      }
    } else {
      $('search-count').textContent = '';
    }
    showTrace(current, true);
  }

  // --- waterfall ----------------------------------------------------------
  function showTrace(ti, keepView) {
    if (ti < 0 || ti >= traces.length) return;
    if (ti !== current) selected = -1;
    current = ti;
    var t = traces[ti];
    if (!keepView || view[1] <= view[0] || view[1] > Math.max(t.duration, 1)) view = [0, Math.max(t.duration, 1)];
    matches = keep = null;
    if (query) {
      matches = new Uint8Array(t.spans.length);
      keep = new Uint8Array(t.spans.length);
      for (var i = 0; i < t.spans.length; i++) {
        if (!spanMatches(t.spans[i])) continue;
        matches[i] = 1;
        for (var at = i; at >= 0 && !keep[at]; at = t.spans[at].parent) keep[at] = 1;
      }
    }
    renderSummary();
    computeRows();
    renderTicks();
    markRuns();
    renderDetails();
  }

  function renderSummary() {
    var t = traces[current];
    var el = $('summary');
    el.textContent = '';
    el.setAttribute('data-spans', String(t.spans.length));
    el.setAttribute('data-errors', String(t.errors));
    el.setAttribute('data-critical', String(t.critical));
    el.appendChild(h('b', { text: t.title }));
    var parts = [];
    if (t.run) parts.push('run ' + t.run);
    parts.push('trace ' + t.id, fmt(t.duration), t.spans.length + (t.spans.length === 1 ? ' span' : ' spans'));
    if (t.total > t.spans.length) parts.push('of ' + t.total + ' in the file');
    if (t.errors) parts.push(t.errors + (t.errors === 1 ? ' error' : ' errors'));
    el.appendChild(h('span', { className: 'muted', text: ' · ' + parts.join(' · ') }));
  }

  function computeRows() {
    var t = traces[current];
    rows = [];
    var n = t.spans.length;
    if (keep) {
      for (var i = 0; i < n; i++) if (keep[i]) rows.push(i);
    } else {
      for (i = 0; i < n;) {
        rows.push(i);
        i = (t.kids[i] && !t.expanded[i]) ? t.end[i] : i + 1;
      }
    }
    spacer.style.height = (rows.length * ROW) + 'px';
    renderRows();
  }

  var pending = false;
  function scheduleRows() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; renderRows(); });
  }

  function renderRows() {
    var t = traces[current];
    var top = viewport.scrollTop;
    var first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    var last = Math.min(rows.length, Math.ceil((top + viewport.clientHeight) / ROW) + OVERSCAN);
    var span = view[1] - view[0];
    var frag = document.createDocumentFragment();
    for (var r = first; r < last; r++) {
      var i = rows[r], s = t.spans[i];
      var cls = 'row';
      if (s.critical) cls += ' critical';
      if (s.status === 2) cls += ' error';
      if (s.marks && (s.marks.indexOf('cached') >= 0 || s.marks.indexOf('replayed') >= 0)) cls += ' cached';
      if (i === selected) cls += ' selected';
      if (matches && matches[i]) cls += ' match';
      var toggle = h('span', { className: 'toggle' + (t.kids[i] ? (keep || t.expanded[i] ? ' open' : ' closed') : '') });
      var label = h('div', { className: 'label', style: 'padding-left:' + (6 + Math.min(s.depth, 40) * 14) + 'px' }, toggle, h('span', { className: 'name', text: s.name }));
      if (s.status === 2) label.appendChild(h('span', { className: 'mark error', text: 'error' }));
      (s.marks || []).forEach(function (m) { label.appendChild(h('span', { className: 'mark ' + m.split(' ')[0], text: m })); });
      var left = (s.start - view[0]) / span * 100;
      var width = Math.max(s.duration / span * 100, 0.15);
      var bar = h('div', { className: 'bar', style: 'left:' + left + '%;width:' + width + '%', title: s.name + ' · ' + fmt(s.duration) });
      var row = h('div', { className: cls, 'data-span': i, 'data-name': s.name, style: 'top:' + (r * ROW) + 'px' },
        label, h('div', { className: 'track' }, bar), h('div', { className: 'dur', text: fmt(s.duration) }));
      frag.appendChild(row);
    }
    rowsEl.textContent = '';
    rowsEl.appendChild(frag);
  }

  // The name column takes 42% of the waterfall, within bounds.
  function layout() {
    var w = $('waterfall').clientWidth || 800;
    document.documentElement.style.setProperty('--label-w', Math.round(Math.min(360, Math.max(180, w * 0.42))) + 'px');
  }

  function renderTicks() {
    var el = $('ticks');
    el.textContent = '';
    var span = view[1] - view[0];
    var count = Math.max(2, Math.floor((el.clientWidth || 600) / 90));
    var raw = span / count;
    var pow = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    var step = [1, 2, 5, 10].map(function (m) { return m * pow; }).find(function (s) { return s >= raw; }) || 10 * pow;
    for (var x = Math.ceil(view[0] / step) * step; x <= view[1]; x += step) {
      var at = (x - view[0]) / span * 100;
      // A label near the right end is drawn to the left of its tick.
      var style = at > 80 ? 'left:' + at + '%;transform:translateX(-100%);border-left:0;border-right:1px solid var(--line)' : 'left:' + at + '%';
      el.appendChild(h('div', { className: 'tick', style: style, text: x === 0 ? '0' : fmt(x) }));
    }
  }

  function toggle(i, open) {
    var t = traces[current];
    if (!t.kids[i] || keep) return;
    t.expanded[i] = open == null ? (t.expanded[i] ? 0 : 1) : (open ? 1 : 0);
    computeRows();
  }

  function reveal(i) {
    var t = traces[current];
    for (var at = t.spans[i].parent; at >= 0; at = t.spans[at].parent) t.expanded[at] = 1;
    computeRows();
    var r = rows.indexOf(i);
    if (r >= 0 && (r * ROW < viewport.scrollTop || (r + 1) * ROW > viewport.scrollTop + viewport.clientHeight)) {
      viewport.scrollTop = Math.max(0, r * ROW - viewport.clientHeight / 3);
    }
    renderRows();
  }

  function select(i) {
    selected = i;
    renderRows();
    renderDetails();
  }

  function zoom(factor, at) {
    var t = traces[current];
    var full = Math.max(t.duration, 1);
    var span = view[1] - view[0];
    var center = at == null ? view[0] + span / 2 : at;
    var next = Math.min(full, Math.max(span * factor, 1000));
    var lo = center - (center - view[0]) * (next / span);
    lo = Math.max(0, Math.min(lo, full - next));
    view = [lo, lo + next];
    renderTicks();
    renderRows();
  }

  function zoomTo(lo, hi) {
    var t = traces[current];
    var pad = (hi - lo) * 0.05 + 1;
    view = [Math.max(0, lo - pad), Math.min(Math.max(t.duration, 1), hi + pad)];
    renderTicks();
    renderRows();
  }

  // --- details ------------------------------------------------------------
  function table(pairs) {
    var tb = h('table');
    pairs.forEach(function (p) {
      tb.appendChild(h('tr', null, h('td', { className: 'key', text: p[0] }), h('td', { className: 'value', text: valueText(p[1]) })));
    });
    return tb;
  }

  function attr(list, key) {
    for (var i = 0; i < list.length; i++) if (list[i][0] === key) return list[i][1];
    return undefined;
  }

  function renderDetails() {
    var el = $('details');
    el.textContent = '';
    var t = traces[current];
    if (!t || selected < 0) {
      el.appendChild(h('p', { className: 'hint', text: 'Select a span to see its attributes, events, links and resource.' }));
      return;
    }
    var s = t.spans[selected];
    el.setAttribute('data-span', s.id);
    el.appendChild(h('h3', { text: s.name }));
    var status = s.status === 2 ? 'error' : s.status === 1 ? 'ok' : 'unset';
    var facts = [
      ['trace id', t.id], ['span id', s.id],
      ['parent', s.parent >= 0 ? t.spans[s.parent].id + ' (' + t.spans[s.parent].name + ')' : (s.remoteParent ? s.remoteParent + ' (not in this file)' : 'none (root)')],
      ['kind', s.kind], ['start', '+' + fmt(s.start) + ' from the trace start'], ['duration', fmt(s.duration)],
    ];
    var sc = scopes.get(s.scope);
    if (sc && sc.name) facts.push(['scope', sc.name + (sc.version ? ' ' + sc.version : '')]);
    if (s.critical) facts.push(['critical path', 'yes']);
    if (s.marks && s.marks.length) facts.push(['lifecycle', s.marks.join(', ')]);
    el.appendChild(table(facts));
    var st = h('p', null, 'status: ', h('span', { className: s.status === 2 ? 'status-error' : '', text: status + (s.message ? ': ' + s.message : '') }));
    el.appendChild(st);
    el.appendChild(h('p', { className: 'actions' }, (function () {
      var b = h('button', { text: 'Zoom to span' });
      b.addEventListener('click', function () { zoomTo(s.start, s.start + s.duration); });
      return b;
    })()));

    var captured = s.attributes.filter(function (a) { return a[0].indexOf('flowtrace.input.') === 0 || a[0] === 'flowtrace.output'; });
    if (captured.length) {
      el.appendChild(h('h4', { text: 'Captured input and output' }));
      el.appendChild(table(captured));
    }
    el.appendChild(h('h4', { text: 'Attributes (' + s.attributes.length + ')' }));
    el.appendChild(table(s.attributes));

    el.appendChild(h('h4', { text: 'Events (' + s.events.length + ')' }));
    s.events.forEach(function (e) {
      var box = h('div', { className: 'event' }, h('span', { className: 'event-name', text: e.name }), h('span', { className: 'event-time', text: '+' + fmt(e.time) }));
      if (e.name === 'exception') {
        var ex = h('div', { className: 'exception' });
        var type = attr(e.attributes, 'exception.type'), msg = attr(e.attributes, 'exception.message'), stack = attr(e.attributes, 'exception.stacktrace');
        if (type !== undefined) ex.appendChild(h('div', { className: 'exception-type', text: valueText(type) }));
        if (msg !== undefined) ex.appendChild(h('div', { className: 'exception-message', text: valueText(msg) }));
        if (stack !== undefined) ex.appendChild(h('pre', { className: 'stacktrace', text: valueText(stack) }));
        var rest = e.attributes.filter(function (a) { return ['exception.type', 'exception.message', 'exception.stacktrace'].indexOf(a[0]) < 0; });
        if (rest.length) ex.appendChild(table(rest));
        box.appendChild(ex);
      } else if (e.attributes.length) {
        box.appendChild(table(e.attributes));
      }
      el.appendChild(box);
    });

    el.appendChild(h('h4', { text: 'Links (' + s.links.length + ')' }));
    s.links.forEach(function (l) {
      var target = bySpanId.get(l.traceId + '/' + l.spanId);
      var box = h('div', { className: 'link' });
      if (target) {
        var a = h('a', { href: '#span-' + l.spanId, className: 'in-file', 'data-trace': l.traceId, 'data-span': l.spanId, text: traces[target[0]].spans[target[1]].name + ' (span ' + l.spanId + ')' });
        a.addEventListener('click', function (ev) { ev.preventDefault(); go(target[0], target[1]); });
        box.appendChild(a);
      } else {
        box.appendChild(document.createTextNode('trace ' + l.traceId + ' span ' + l.spanId + ' (not in this file)'));
      }
      if (l.attributes.length) box.appendChild(table(l.attributes));
      el.appendChild(box);
    });

    var res = resources.get(s.resource);
    el.appendChild(h('h4', { text: 'Resource' }));
    el.appendChild(table(res ? res.attributes : []));
  }

  function go(ti, si) {
    if (query) { $('search').value = ''; query = ''; $('search-count').textContent = ''; }
    showTrace(ti, ti === current);
    reveal(si);
    select(si);
    if (history.replaceState) history.replaceState(null, '', '#span-' + traces[ti].spans[si].id);
  }

  // --- events -------------------------------------------------------------
  viewport.addEventListener('scroll', scheduleRows);
  window.addEventListener('resize', function () { layout(); renderTicks(); scheduleRows(); });
  rowsEl.addEventListener('click', function (ev) {
    var row = ev.target.closest('.row');
    if (!row) return;
    var i = Number(row.getAttribute('data-span'));
    if (ev.target.classList.contains('toggle')) toggle(i);
    else select(i);
  });
  rowsEl.addEventListener('dblclick', function (ev) {
    var row = ev.target.closest('.row');
    if (row) toggle(Number(row.getAttribute('data-span')));
  });
  viewport.addEventListener('wheel', function (ev) {
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      var track = rowsEl.querySelector('.track') || $('ticks');
      var box = track.getBoundingClientRect();
      var frac = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
      zoom(ev.deltaY > 0 ? 1.25 : 0.8, view[0] + frac * (view[1] - view[0]));
    } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
      var span = view[1] - view[0], full = Math.max(traces[current].duration, 1);
      if (span < full) {
        ev.preventDefault();
        var shift = (ev.shiftKey ? ev.deltaY : ev.deltaX) / 600 * span;
        var lo = Math.max(0, Math.min(view[0] + shift, full - span));
        view = [lo, lo + span];
        renderTicks();
        renderRows();
      }
    }
  }, { passive: false });
  $('ticks').addEventListener('click', function (ev) {
    var box = this.getBoundingClientRect();
    zoom(0.5, view[0] + (ev.clientX - box.left) / box.width * (view[1] - view[0]));
  });
  viewport.addEventListener('keydown', function (ev) {
    if (selected < 0) return;
    var r = rows.indexOf(selected);
    if (ev.key === 'ArrowDown' && r + 1 < rows.length) { select(rows[r + 1]); reveal(rows[r + 1]); }
    else if (ev.key === 'ArrowUp' && r > 0) { select(rows[r - 1]); reveal(rows[r - 1]); }
    else if (ev.key === 'ArrowRight') toggle(selected, true);
    else if (ev.key === 'ArrowLeft') toggle(selected, false);
    else return;
    ev.preventDefault();
  });
  $('zoom-in').addEventListener('click', function () { zoom(0.5); });
  $('zoom-out').addEventListener('click', function () { zoom(2); });
  $('zoom-reset').addEventListener('click', function () { view = [0, Math.max(traces[current].duration, 1)]; renderTicks(); renderRows(); });
  $('expand-all').addEventListener('click', function () { traces[current].expanded.fill(1); computeRows(); });
  $('collapse-all').addEventListener('click', function () { collapseToTop(traces[current]); computeRows(); });
  var timer = 0;
  $('search').addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(applySearch, 150); });
  $('search').addEventListener('keydown', function (ev) { if (ev.key === 'Enter') { clearTimeout(timer); applySearch(); } });
  window.addEventListener('hashchange', fromHash);

  function fromHash() {
    var m = /^#span-([0-9a-f]{16})$/.exec(location.hash);
    if (!m) return false;
    for (var ti = 0; ti < traces.length; ti++) {
      var target = bySpanId.get(traces[ti].id + '/' + m[1]);
      if (target) { go(target[0], target[1]); return true; }
    }
    return false;
  }

  // --- start --------------------------------------------------------------
  renderRuns();
  layout();
  if (!traces.length) {
    $('summary').textContent = 'No spans in this file.';
    $('summary').setAttribute('data-spans', '0');
  } else if (!fromHash()) {
    showTrace(0);
  }
  document.body.setAttribute('data-ready', 'true');
})();
