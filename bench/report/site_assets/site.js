/* The history site's script (layerbench history site): builds each page from the data files that the page loads
   before it (LB_INDEX, LB_CHANGES, LB_RUNS; one trend's series on demand through LBSite.row). Charts are inline
   SVG drawn here; nothing is fetched from the network. Filters and sorting live in the URL's hash, so every view
   is a permalink that also works from file://. */
(function () {
  'use strict';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var INDEX = window.LB_INDEX || {rows: []};
  var TABLE_LIMIT = 200;  // runs listed on a row page before "show all"

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, kids) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    (kids || []).forEach(function (k) {
      if (k !== null && k !== undefined) node.appendChild(typeof k === 'object' ? k : document.createTextNode(String(k)));
    });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
      if (k === 'text') node.textContent = attrs[k];
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
  }
  function fmtS(s) {
    if (s === null || s === undefined) return '-';
    var a = Math.abs(s);
    if (a >= 1) return s.toPrecision(3) + ' s';
    if (a >= 1e-3) return (s * 1e3).toPrecision(3) + ' ms';
    if (a >= 1e-6) return (s * 1e6).toPrecision(3) + ' \u00b5s';
    return (s * 1e9).toPrecision(3) + ' ns';
  }
  function fmtRatio(r) { return r === null || r === undefined ? '' : r.toFixed(3) + 'x'; }
  function pct(r) { return r === null || r === undefined ? '-' : (100 * r).toFixed(1) + '%'; }
  function short(commit) { return commit ? String(commit).slice(0, 10) : '-'; }
  function label(r) {
    var parts = [r.workload, r.device, r.dtype].filter(Boolean).join(' ');
    return parts + (r.variant && r.variant !== 'default' ? ' [' + r.variant + ']' : '');
  }
  function params() { return new URLSearchParams(location.hash.replace(/^#/, '')); }
  function setParams(p) {
    var text = p.toString();
    try { history.replaceState(null, '', text ? '#' + text : location.pathname + location.search); }
    catch (e) { location.hash = text; }
  }
  function rowHref(id, extra) { return 'row.html#id=' + encodeURIComponent(id) + (extra || ''); }
  function main() { return document.getElementById('main'); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function verdictBadge(v) {
    var cls = v === 'slower' || v === 'faster' || v === 'steady' ? v : 'failed';
    return el('span', {'class': cls, text: v});
  }
  function median(xs) {
    var s = xs.filter(function (x) { return x !== null; }).sort(function (a, b) { return a - b; });
    if (!s.length) return null;
    var m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  // A select of the choices of one field ('' = all), kept in the hash under its name.
  function choice(name, title, options, p, onchange) {
    var select = el('select', {name: name, 'aria-label': title, onchange: onchange},
      [el('option', {value: ''}, ['all'])].concat(options.map(function (o) { return el('option', {value: o}, [o || '(none)']); })));
    select.value = p.get(name) || '';
    return el('label', {}, [title + ' ', select]);
  }
  function textFilter(name, title, p, oninput) {
    var input = el('input', {type: 'search', name: name, placeholder: title, value: p.get(name) || '', oninput: oninput});
    return el('label', {}, [title + ' ', input]);
  }
  function readFilters(form) {
    var p = params();
    form.querySelectorAll('input,select').forEach(function (i) {
      var v = i.type === 'checkbox' ? (i.checked ? '1' : '') : i.value;
      if (v) p.set(i.name, v); else p.delete(i.name);
    });
    setParams(p);
    return p;
  }
  function matchRow(r, p) {
    var q = (p.get('q') || '').toLowerCase();
    if (q && (r.workload + ' ' + r.tags.join(' ')).toLowerCase().indexOf(q) < 0) return false;
    var fields = ['device', 'dtype', 'variant', 'machine', 'verdict'];
    for (var i = 0; i < fields.length; i++) {
      var want = p.get(fields[i]);
      if (want && String(r[fields[i]]) !== want) return false;
    }
    var tag = p.get('tag');
    return !tag || r.tags.indexOf(tag) >= 0;
  }

  // Sortable table: columns [{key, title, value(row) for sorting, cell(row) -> node or text, cls}].
  function sortedTable(id, columns, rows, p) {
    var sort = p.get('sort') || '';
    var desc = sort.charAt(0) === '-', key = sort.replace(/^-/, '');
    var col = columns.filter(function (c) { return c.key === key && c.value; })[0];
    if (col) {
      rows = rows.slice().sort(function (a, b) {
        var x = col.value(a), y = col.value(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * (desc ? -1 : 1);
      });
    }
    var head = el('tr', {}, columns.map(function (c) {
      var cls = (c.value ? 'sort' : '') + (c.key === key ? (desc ? ' desc' : ' asc') : '') + (c.narrow ? ' hide-narrow' : '');
      return el('th', {'class': cls, 'data-key': c.key, onclick: c.value ? function () {
        var q = params();
        q.set('sort', (c.key === key && !desc ? '-' : '') + c.key);
        setParams(q);
        render();
      } : null}, [c.title]);
    }));
    var body = el('tbody', {}, rows.map(function (r) {
      return el('tr', {}, columns.map(function (c) {
        return el('td', {'class': (c.cls || '') + (c.narrow ? ' hide-narrow' : '')}, [c.cell(r)]);
      }));
    }));
    return el('div', {'class': 'scroll'}, [el('table', {id: id}, [el('thead', {}, [head]), body])]);
  }

  function spark(values, mark, width, height) {
    width = width || 120; height = height || 24;
    var box = svg('svg', {'class': 'spark', width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
                          role: 'img', 'aria-label': 'trend of the newest runs'});
    var xs = values.filter(function (v) { return v !== null; });
    if (!xs.length) return box;
    var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs), span = hi - lo || hi || 1;
    var step = values.length > 1 ? (width - 4) / (values.length - 1) : 0;
    var pts = [];
    values.forEach(function (v, i) {
      if (v !== null) pts.push((2 + i * step).toFixed(1) + ',' + (height - 2 - (v - lo) / span * (height - 4)).toFixed(1));
    });
    if (pts.length === 1) pts.push((width - 2) + ',' + pts[0].split(',')[1]);
    if (mark !== null && mark !== undefined && mark >= 0 && mark < values.length) {
      box.appendChild(svg('line', {'class': 'change', x1: 2 + mark * step, x2: 2 + mark * step, y1: 0, y2: height}));
    }
    box.appendChild(svg('polyline', {points: pts.join(' ')}));
    return box;
  }
  function sparkOf(r) {
    var mark = r.change ? r.change.position - (r.n_ok - r.spark.length) : null;
    return spark(r.spark, mark);
  }
  function changeCell(r) {
    if (!r.change) return '-';
    return el('span', {}, [el('span', {'class': r.change.direction, text: fmtRatio(r.change.ratio) + ' ' + r.change.direction}),
                           ' at ' + short(r.change.commit)]);
  }

  // ------------------------------------------------------------------ overview
  function verdicts() {
    var seen = {};
    INDEX.rows.forEach(function (r) { seen[r.verdict] = true; });
    return ['slower', 'faster', 'steady'].concat(Object.keys(seen).sort()).filter(function (v, i, all) {
      return seen[v] && all.indexOf(v) === i;
    });
  }
  function overview(root) {
    var p = params();
    var form = el('form', {'class': 'filters', onsubmit: function (e) { e.preventDefault(); }});
    var results = el('div', {id: 'results'});
    var redraw = function () { fill(readFilters(form)); };
    [textFilter('q', 'name or tag', p, redraw), choice('device', 'device', INDEX.devices, p, redraw),
     choice('dtype', 'dtype', INDEX.dtypes, p, redraw), choice('variant', 'variant', INDEX.variants, p, redraw),
     choice('machine', 'machine', INDEX.machines, p, redraw), choice('tag', 'tag', INDEX.tags, p, redraw),
     choice('verdict', 'verdict', verdicts(), p, redraw)].forEach(function (f) { form.appendChild(f); });
    var columns = [
      {key: 'name', title: 'row', value: label, cell: function (r) { return el('a', {href: rowHref(r.id)}, [label(r)]); }},
      {key: 'machine', title: 'machine', value: function (r) { return r.machine; }, cell: function (r) { return r.machine || '-'; }},
      {key: 'latest', title: 'latest', value: function (r) { return r.latest_s; }, cell: function (r) { return fmtS(r.latest_s); }, cls: 'n'},
      {key: 'trend', title: 'trend', cell: sparkOf},
      {key: 'change', title: 'latest change', value: function (r) { return r.change ? r.change.ratio : null; }, cell: changeCell},
      {key: 'when', title: 'changed', narrow: true, value: function (r) { return r.change ? r.change.time : null; },
       cell: function (r) { return r.change ? r.change.time.slice(0, 16).replace('T', ' ') : '-'; }},
      {key: 'verdict', title: 'verdict', value: function (r) { return r.verdict; }, cell: function (r) { return verdictBadge(r.verdict); }},
      {key: 'runs', title: 'runs', narrow: true, value: function (r) { return r.n_runs; }, cell: function (r) { return r.n_runs; }, cls: 'n'},
    ];
    root.appendChild(el('h1', {}, ['Overview']));
    root.appendChild(el('p', {'class': 'note'}, [INDEX.n_trends + ' trends (row x machine) over ' + INDEX.n_runs +
      ' runs; values are each run\'s ' + INDEX.column + ' (median_s where a row has none)' + (INDEX.relative ? '; change points judged relative to the rest of the suite' : '') + '.']));
    root.appendChild(form);
    root.appendChild(results);
    function fill(q) {
      var rows = INDEX.rows.filter(function (r) { return matchRow(r, q); });
      clear(results).appendChild(el('p', {id: 'shown', 'class': 'note'}, [rows.length + ' of ' + INDEX.rows.length + ' trends shown']));
      results.appendChild(sortedTable('overview', columns, rows, q));
    }
    fill(p);
  }

  // ------------------------------------------------------------------ regressions
  function changeTable(id, changes, withRow) {
    var columns = [
      {key: 'time', title: 'run time', cell: function (c) { return c.time.slice(0, 16).replace('T', ' '); }},
      withRow ? {key: 'row', title: 'row', cell: function (c) {
        return el('a', {href: rowHref(c.row, '&change=' + c.position), 'class': 'row-link'}, [label(c)]);
      }} : {key: 'device', title: 'device', cell: function (c) { return c.device; }},
      {key: 'machine', title: 'machine', cell: function (c) { return c.machine || '-'; }},
      {key: 'ratio', title: 'ratio', cls: 'n', cell: function (c) { return el('span', {'class': c.direction, text: fmtRatio(c.ratio) + ' ' + c.direction}); }},
      {key: 'levels', title: 'before \u2192 after', narrow: !withRow, cell: function (c) {
        return c.before_s === null ? '-' : fmtS(c.before_s) + ' \u2192 ' + fmtS(c.after_s);
      }},
      {key: 'range', title: 'may have started', cell: function (c) {
        var at = short(c.commit), from = short(c.earliest_commit);
        return (from !== at ? 'between ' + from + ' and ' : 'at ') + at + (c.before_commit ? ' (after ' + short(c.before_commit) + ')' : '');
      }},
      {key: 'run', title: 'run', narrow: true, cell: function (c) { return c.run.slice(0, 10); }},
      {key: 'command', title: 'reproduce', cls: 'wrap', cell: function (c) {
        var code = el('code', {'class': 'cmd'}, [c.command]);
        var copy = el('button', {type: 'button', onclick: function () {
          if (navigator.clipboard) navigator.clipboard.writeText(c.command).catch(function () {});
        }}, ['copy']);
        return el('div', {}, [code, copy]);
      }},
    ];
    return sortedTable(id, columns, changes, new URLSearchParams());
  }
  function newestRun() {
    return Math.max.apply(null, INDEX.rows.map(function (r) { return Date.parse(r.latest_time) || -Infinity; }));
  }
  function regressions(root) {
    var p = params(), all = window.LB_CHANGES || [];
    var form = el('form', {'class': 'filters', onsubmit: function (e) { e.preventDefault(); }});
    var results = el('div', {id: 'results'});
    var redraw = function () { fill(readFilters(form)); };
    [textFilter('q', 'name', p, redraw), choice('machine', 'machine', INDEX.machines, p, redraw),
     choice('direction', 'direction', ['slower', 'faster'], p, redraw),
     choice('days', 'within the last days', ['7', '30', '90', '365'], p, redraw)].forEach(function (f) { form.appendChild(f); });
    root.appendChild(el('h1', {}, ['Regressions and improvements']));
    root.appendChild(el('p', {'class': 'note'}, ['Change points, newest first: the run where a row\'s new level starts, ' +
      'the commits where it may have started (bisect from the earlier one), the ratio judged against the rest of the suite, and an ' +
      '`ab` command that measures the commit before against the commit of the new level.']));
    root.appendChild(form);
    root.appendChild(results);
    function fill(p) {
      var q = (p.get('q') || '').toLowerCase(), machine = p.get('machine'), direction = p.get('direction');
      var since = p.get('days') ? newestRun() - Number(p.get('days')) * 864e5 : -Infinity;  // days before the newest run
      var shown = all.filter(function (c) {
        return (!q || c.workload.toLowerCase().indexOf(q) >= 0 || c.suite) && (!machine || c.machine === machine) &&
          (!direction || c.direction === direction) && Date.parse(c.time) >= since;
      });
      var rows = shown.filter(function (c) { return !c.suite; }), suite = shown.filter(function (c) { return c.suite; });
      clear(results).appendChild(el('h2', {}, ['Rows (' + rows.length + ')']));
      results.appendChild(rows.length ? changeTable('changes', rows, true) : el('p', {id: 'no-changes'}, ['No change points.']));
      results.appendChild(el('h2', {}, ['Whole suite (' + suite.length + ')']));
      results.appendChild(el('p', {'class': 'note'}, ['Moves of every row of a run together (another machine, a torch upgrade, ' +
        'a busy host): reported once here, not as a change of each row.']));
      results.appendChild(suite.length ? changeTable('suite-changes', suite, false) : el('p', {}, ['None.']));
    }
    fill(p);
  }

  // ------------------------------------------------------------------ one row
  var wanted = null;
  function rowPage(root) {
    var p = params(), id = p.get('id') || '';
    var r = INDEX.rows.filter(function (x) { return x.id === id; })[0];
    if (!r) {
      root.appendChild(el('h1', {}, ['Row not found']));
      root.appendChild(el('p', {}, ['No trend ' + JSON.stringify(id) + ' in this site; see the ', el('a', {href: 'index.html'}, ['overview']), '.']));
      return;
    }
    document.title = 'layerbench history: ' + label(r);
    root.appendChild(el('h1', {}, [label(r)]));
    root.appendChild(el('dl', {'class': 'facts'}, [
      el('dt', {}, ['machine']), el('dd', {}, [r.machine || '-']), el('dt', {}, ['tags']), el('dd', {}, [r.tags.join(', ') || '-']),
      el('dt', {}, ['latest']), el('dd', {}, [fmtS(r.latest_s) + ' (' + short(r.latest_commit) + ', ' + r.latest_time + ')']),
      el('dt', {}, ['verdict']), el('dd', {}, [verdictBadge(r.verdict)]),
      el('dt', {}, ['other machines']), el('dd', {}, otherMachines(r))]));
    root.appendChild(el('div', {id: 'series'}, [el('p', {'class': 'note'}, ['Loading the series...'])]));
    wanted = id;
    var script = el('script', {src: 'data/rows/' + encodeURIComponent(id) + '.js'});
    script.onerror = function () {
      clear(document.getElementById('series')).appendChild(el('p', {}, ['The series file data/rows/' + id + '.js is missing.']));
    };
    document.body.appendChild(script);
  }
  function otherMachines(r) {
    var same = INDEX.rows.filter(function (x) {
      return x.id !== r.id && x.workload === r.workload && x.dtype === r.dtype && x.variant === r.variant;
    });
    if (!same.length) return ['-'];
    return same.map(function (x, i) {
      return el('span', {}, [i ? ', ' : '', el('a', {href: rowHref(x.id)}, [x.machine + ' (' + x.device + ')']), ' ' + fmtS(x.latest_s)]);
    });
  }
  function rowLoaded(id, data) {
    if (id !== wanted) return;
    var box = clear(document.getElementById('series'));
    var runs = window.LB_RUNS || {id: [], time: [], commit: [], branch: [], label: [], link: []};
    var highlight = params().get('change'), view = params().get('view') || (data.relative ? 'judged' : 'raw');
    box.appendChild(el('h2', {}, ['Trend']));
    box.appendChild(el('p', {'class': 'note'}, ['Each run\'s ' + data.column + ' (line), its median_s (dotted: the median of its worker processes\' medians) and ' +
      'the spread between worker processes (band: the interquartile range of the process medians around the median); ' +
      'dashed lines: levels and change points, shaded where a change may have started, grey: moves of the whole suite. ' +
      'Hover for the commit and label.']));
    if (data.relative) {
      var pick = el('select', {name: 'view', 'aria-label': 'values', onchange: function () {
        var q = params();
        q.set('view', pick.value);
        setParams(q);
        rowLoaded(id, data);
      }}, [el('option', {value: 'judged'}, ['relative to the rest of the suite (as judged)']), el('option', {value: 'raw'}, ['as measured'])]);
      pick.value = view;
      box.appendChild(el('p', {'class': 'filters'}, [el('label', {}, ['values ', pick])]));
    }
    var last = Number(params().get('last')) || 0;
    if (data.run.length > 100) {
      var range = el('select', {name: 'last', 'aria-label': 'runs drawn', onchange: function () {
        var q = params();
        if (range.value) q.set('last', range.value); else q.delete('last');
        setParams(q);
        rowLoaded(id, data);
      }}, [el('option', {value: ''}, ['all ' + data.run.length])].concat([100, 1000].filter(function (k) { return k < data.run.length; })
        .map(function (k) { return el('option', {value: String(k)}, ['the newest ' + k]); })));
      range.value = last ? String(last) : '';
      box.appendChild(el('p', {'class': 'filters'}, [el('label', {}, ['runs drawn ', range])]));
    }
    var suiteMoves = (window.LB_CHANGES || []).filter(function (c) { return c.suite && c.machine === data.machine && c.device === data.device; });
    var from = last && last < data.run.length ? data.run.length - last : 0;
    box.appendChild(trendChart(newest(data, from), runs, highlight === null ? null : Number(highlight) - from, view, suiteMoves));
    var mine = (window.LB_CHANGES || []).filter(function (c) { return c.row === id; });
    box.appendChild(el('h2', {}, ['Change points (' + data.changes.length + ')']));
    box.appendChild(mine.length ? changeTable('row-changes', mine, false) : el('p', {}, ['None: the row is steady.']));
    box.appendChild(el('h2', {}, ['Runs (' + (data.run.length + data.failed.length) + ')']));
    box.appendChild(runsTable(data, runs, false));
  }

  // A trend's series from position `from` on: positions of its change points shifted, those before dropped.
  function newest(data, from) {
    if (!from) return data;
    var out = Object.assign({}, data);
    ['run', 'value', 'median', 'spread', 'judged'].forEach(function (k) { out[k] = (data[k] || []).slice(from); });
    out.changes = data.changes.filter(function (c) { return c.position >= from; }).map(function (c) {
      return Object.assign({}, c, {position: c.position - from, earliest: Math.max(c.earliest - from, 0), latest: c.latest - from});
    });
    return out;
  }

  function runsTable(data, runs, everything) {
    var starts = {};
    data.changes.forEach(function (c) { starts[c.position] = c.direction; });
    var items = data.run.map(function (ri, i) {
      return {ri: ri, i: i, value: data.value[i], median: data.median[i], spread: data.spread[i], status: 'ok', reason: ''};
    }).concat(data.failed.map(function (f) { return {ri: f[0], i: null, value: null, median: null, spread: null, status: f[1], reason: f[2]}; }));
    items.sort(function (a, b) { return b.ri - a.ri; });
    var shown = everything ? items : items.slice(0, TABLE_LIMIT);
    var head = el('tr', {}, ['#', 'time', 'commit', 'branch', 'label', 'value', 'median', 'between processes', 'status', 'run'].map(function (h) { return el('th', {}, [h]); }));
    var body = el('tbody', {}, shown.map(function (it) {
      var link = runs.link[it.ri];
      return el('tr', {'class': it.i !== null && starts[it.i] ? starts[it.i] : (it.status !== 'ok' ? 'bad' : '')}, [
        el('td', {'class': 'n'}, [it.i === null ? '-' : it.i]), el('td', {}, [String(runs.time[it.ri]).slice(0, 19).replace('T', ' ')]),
        el('td', {}, [short(runs.commit[it.ri])]), el('td', {}, [runs.branch[it.ri] || '']), el('td', {}, [runs.label[it.ri] || '']),
        el('td', {'class': 'n'}, [fmtS(it.value)]), el('td', {'class': 'n'}, [fmtS(it.median)]), el('td', {'class': 'n'}, [pct(it.spread)]),
        el('td', {title: it.reason}, [it.status]),
        el('td', {}, [link ? el('a', {href: link}, [/report\.html$/.test(link) ? 'report' : 'folder']) : String(runs.id[it.ri]).slice(0, 10)])]);
    }));
    var wrap = el('div', {id: 'runs-box'}, [el('div', {'class': 'scroll'}, [el('table', {id: 'runs'}, [el('thead', {}, [head]), body])])]);
    if (shown.length < items.length) {
      wrap.appendChild(el('button', {type: 'button', onclick: function () { wrap.parentNode.replaceChild(runsTable(data, runs, true), wrap); }},
        ['show all ' + items.length + ' runs']));
    }
    return wrap;
  }

  function trendChart(data, runs, highlight, view, suiteMoves) {
    var W = 1000, H = 340, L = 70, R = 16, T = 16, B = 44, n = data.value.length;
    var chart = el('div', {'class': 'chart'});
    var box = svg('svg', {'class': 'trend', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'trend over runs'});
    chart.appendChild(box);
    if (!n) { box.appendChild(svg('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle'}, 'no run of this row ran ok')); return chart; }
    // as judged: every value over its run's suite factor (judged / value), the median and band with it
    var judged = view === 'judged' && data.judged.length === n;
    var factor = data.value.map(function (v, i) { return judged && v ? data.judged[i] / v : 1; });
    var val = data.value.map(function (v, i) { return v === null ? null : v * factor[i]; });
    var med = data.median.map(function (v, i) { return v === null ? null : v * factor[i]; });
    var lo = [], hi = [];
    for (var i = 0; i < n; i++) {
      var m = med[i] === null ? val[i] : med[i], s = data.spread[i] || 0;
      lo.push(m * (1 - s / 2)); hi.push(m * (1 + s / 2));
    }
    var all = lo.concat(hi, val).filter(function (v) { return v !== null && isFinite(v); });
    var ymin = Math.min.apply(null, all), ymax = Math.max.apply(null, all), pad = (ymax - ymin) * 0.06 || ymax * 0.05 || 1e-9;
    ymin -= pad; ymax += pad;
    var step = n > 1 ? (W - L - R) / (n - 1) : 0;
    function x(i) { return n > 1 ? L + i * step : L + (W - L - R) / 2; }
    function y(v) { return T + (ymax - v) / (ymax - ymin) * (H - T - B); }
    function line(vals, cls) {
      var d = '', pen = false;
      vals.forEach(function (v, i) {
        if (v === null) { pen = false; return; }
        d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
      });
      return svg('path', {'class': cls, d: d});
    }
    // axes and ticks
    box.appendChild(svg('line', {'class': 'axis', x1: L, x2: L, y1: T, y2: H - B}));
    box.appendChild(svg('line', {'class': 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B}));
    for (var t = 0; t <= 4; t++) {
      var v = ymin + (ymax - ymin) * t / 4;
      box.appendChild(svg('text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end'}, fmtS(v)));
    }
    var ticks = Math.min(n, 6);
    for (var k = 0; k < ticks; k++) {
      var at = ticks > 1 ? Math.round(k * (n - 1) / (ticks - 1)) : 0, ri = data.run[at];
      var anchor = ticks > 1 && k === ticks - 1 ? 'end' : (ticks > 1 && k === 0 ? 'start' : 'middle');
      box.appendChild(svg('text', {x: x(at), y: H - B + 16, 'text-anchor': anchor}, short(runs.commit[ri]) || String(at)));
      box.appendChild(svg('text', {x: x(at), y: H - B + 30, 'text-anchor': anchor}, String(runs.time[ri] || '').slice(0, 10)));
    }
    var band = '';
    for (i = 0; i < n; i++) band += (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(hi[i]).toFixed(1);
    for (i = n - 1; i >= 0; i--) band += 'L' + x(i).toFixed(1) + ' ' + y(lo[i]).toFixed(1);
    box.appendChild(svg('path', {'class': 'band', d: band + 'Z'}));
    box.appendChild(line(med, 'median'));
    box.appendChild(line(val, 'value'));
    if (n <= 400) val.forEach(function (v, i) { if (v !== null) box.appendChild(svg('circle', {'class': 'dot', cx: x(i), cy: y(v), r: 2})); });
    // levels between change points, and the change points with the runs where each may have started
    var edges = [0].concat(data.changes.map(function (c) { return c.position; }), [n]);
    for (var e = 0; e + 1 < edges.length; e++) {
      var level = median(val.slice(edges[e], edges[e + 1]));
      if (level !== null) box.appendChild(svg('line', {'class': 'level', x1: x(edges[e]), x2: x(Math.max(edges[e + 1] - 1, edges[e])), y1: y(level), y2: y(level)}));
    }
    var at = {};
    data.run.forEach(function (ri, i) { at[runs.id[ri]] = i; });
    (suiteMoves || []).forEach(function (c) {
      if (at[c.run] === undefined) return;
      box.appendChild(svg('line', {'class': 'suite-change', x1: x(at[c.run]), x2: x(at[c.run]), y1: T, y2: H - B}));
      box.appendChild(svg('text', {x: x(at[c.run]) + 4, y: H - B - 6}, 'whole suite ' + fmtRatio(c.ratio)));
    });
    data.changes.forEach(function (c) {
      if (c.latest > c.earliest) box.appendChild(svg('rect', {'class': 'maybe', x: x(c.earliest), y: T, width: Math.max(x(c.latest) - x(c.earliest), 1), height: H - T - B}));
      var mark = svg('line', {'class': 'change ' + c.direction + (highlight === c.position ? ' highlighted' : ''), 'data-position': c.position,
                              x1: x(c.position), x2: x(c.position), y1: T, y2: H - B, 'stroke-width': highlight === c.position ? 3 : null});
      mark.appendChild(svg('title', {}, fmtRatio(c.ratio) + ' ' + c.direction + ' at ' + short(c.commit)));
      box.appendChild(mark);
      box.appendChild(svg('text', {'class': 'change-label', x: x(c.position) + 4, y: T + 12}, fmtRatio(c.ratio) + ' ' + c.direction + ' at ' + short(c.commit)));
    });
    // hover: the nearest run's commit, label and values
    var dot = svg('circle', {'class': 'hover', r: 4, cx: -10, cy: -10});
    box.appendChild(dot);
    var tip = el('div', {'class': 'tip'});
    chart.appendChild(tip);
    var overlay = svg('rect', {x: L, y: T, width: W - L - R, height: H - T - B, fill: 'transparent'});
    overlay.addEventListener('mousemove', function (evt) {
      var rect = box.getBoundingClientRect(), px = (evt.clientX - rect.left) * W / rect.width;
      var i = n > 1 ? Math.max(0, Math.min(n - 1, Math.round((px - L) / step))) : 0, ri = data.run[i];
      dot.setAttribute('cx', x(i)); dot.setAttribute('cy', y(val[i]));
      clear(tip).appendChild(el('div', {}, [el('b', {}, ['run ' + i + ': ' + fmtS(data.value[i])])]));
      [['relative to the suite', data.judged.length ? fmtS(data.judged[i]) + ' (suite factor ' + (data.value[i] / data.judged[i]).toFixed(3) + ')' : '-'], ['commit', short(runs.commit[ri]) + (runs.branch[ri] ? ' (' + runs.branch[ri] + ')' : '')], ['label', runs.label[ri] || '-'],
       ['time', String(runs.time[ri]).slice(0, 19).replace('T', ' ')], ['median', fmtS(data.median[i])],
       ['between processes', pct(data.spread[i])], ['run id', runs.id[ri]]].forEach(function (kv) {
        tip.appendChild(el('div', {}, [kv[0] + ': ' + kv[1]]));
      });
      tip.style.display = 'block';
      var left = (evt.clientX - chart.getBoundingClientRect().left) + 12;
      tip.style.left = Math.max(0, Math.min(left, chart.clientWidth - tip.offsetWidth - 4)) + 'px';
      tip.style.top = ((evt.clientY - chart.getBoundingClientRect().top) + 12) + 'px';
    });
    overlay.addEventListener('mouseleave', function () { tip.style.display = 'none'; dot.setAttribute('cx', -10); });
    box.appendChild(overlay);
    return chart;
  }

  // ------------------------------------------------------------------ machines
  function machines(root) {
    var p = params();
    var form = el('form', {'class': 'filters', onsubmit: function (e) { e.preventDefault(); }});
    var results = el('div', {id: 'results'});
    var redraw = function () { fill(readFilters(form)); };
    [textFilter('q', 'name or tag', p, redraw), choice('device', 'device', INDEX.devices, p, redraw),
     choice('dtype', 'dtype', INDEX.dtypes, p, redraw), choice('tag', 'tag', INDEX.tags, p, redraw)].forEach(function (f) { form.appendChild(f); });
    root.appendChild(el('h1', {}, ['Machines']));
    root.appendChild(el('p', {'class': 'note'}, ['The same rows side by side on each machine and device: the latest value, ' +
      'its trend and how many times the fastest machine it is.']));
    root.appendChild(form);
    root.appendChild(results);
    fill(p);
    function fill(p) {
    var rows = INDEX.rows.filter(function (r) { return matchRow(r, p); });
    var columns = [], seen = {}, groups = {}, order = [];
    rows.forEach(function (r) {
      var col = r.machine + '\u0000' + r.device, g = [r.workload, r.dtype, r.variant].join('\u0000');
      if (!seen[col]) { seen[col] = true; columns.push({machine: r.machine, device: r.device, key: col}); }
      if (!groups[g]) { groups[g] = {}; order.push(g); }
      groups[g][col] = r;
    });
    columns.sort(function (a, b) { return a.key < b.key ? -1 : 1; });
    var head = el('tr', {}, [el('th', {}, ['row'])].concat(columns.map(function (c) { return el('th', {}, [(c.machine || '(no key)') + ' (' + c.device + ')']); })));
    var body = el('tbody', {}, order.map(function (g) {
      var cells = groups[g], best = Math.min.apply(null, Object.keys(cells).map(function (k) { return cells[k].latest_s || Infinity; }));
      var any = cells[Object.keys(cells)[0]];
      var name = [any.workload, any.dtype].join(' ') + (any.variant && any.variant !== 'default' ? ' [' + any.variant + ']' : '');
      return el('tr', {}, [el('td', {}, [name])].concat(columns.map(function (c) {
        var r = cells[c.key];
        if (!r) return el('td', {}, ['']);
        var times = r.latest_s && isFinite(best) ? (r.latest_s / best) : null;
        return el('td', {}, [el('a', {href: rowHref(r.id)}, [fmtS(r.latest_s)]),
          times !== null && times > 1.0005 ? ' (' + times.toFixed(2) + 'x)' : '', spark(r.spark, null, 90, 20)]);
      })));
    }));
    clear(results).appendChild(el('p', {id: 'shown', 'class': 'note'}, [order.length + ' rows on ' + columns.length + ' machine(s) and device(s)']));
    results.appendChild(el('div', {'class': 'scroll'}, [el('table', {id: 'machines'}, [el('thead', {}, [head]), body])]));
    }
  }

  // ------------------------------------------------------------------ dispatch
  var PAGES = {index: overview, regressions: regressions, row: rowPage, machines: machines};
  function render() {
    var root = clear(main());
    var store = document.getElementById('store');
    if (store) store.textContent = (INDEX.store || '') + (INDEX.generated_utc ? ', built ' + INDEX.generated_utc : '');
    (PAGES[document.body.getAttribute('data-page')] || overview)(root);
  }
  window.LBSite = {row: rowLoaded, render: render};
  window.addEventListener('hashchange', render);
  render();
})();
