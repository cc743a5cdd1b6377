/**
 * The dashboard's browser code, inlined into dashboard.html (no CDN, works offline).
 * Plain ES2019 in a string: it never runs in Node. It provides
 *  - hover tooltips for every SVG element that had a <title> (moved to data-tip);
 *  - canvas heatmaps (.mp-heatmap) that stay fast at thousands of models: wheel / button
 *    zoom, drag pan, hover tooltip with the exact value and both models' id, family and
 *    type, ordering by family, linear / sqrt / log colour scales, find-a-model;
 *  - sortable tables and per-chart SVG download.
 * Test hooks: each heatmap canvas has data-n and data-cells (= n × n); window.modelprint
 * .heatmaps[k] exposes n, value(i, j), cellCenter(i, j) (client coordinates) and hover(i, j).
 */
export const CLIENT_JS = String.raw`
(function () {
  'use strict';
  var VIRIDIS = [[68,1,84],[71,45,123],[59,82,139],[44,114,142],[33,145,140],[40,174,128],[94,201,98],[173,220,48],[253,231,37]];
  var MISSING = [200,200,200];
  var CATS = ['#0072B2','#E69F00','#009E73','#CC79A7','#56B4E9','#D55E00','#F0E442','#000000','#8C564B','#7F7F7F','#17BECF','#BCBD22'];
  var api = { heatmaps: [] };
  window.modelprint = api;

  function viridis(t) {
    if (!(t >= 0)) t = 0; if (t > 1) t = 1;
    var x = t * (VIRIDIS.length - 1);
    var i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    var f = x - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
  }
  function escapeHtml(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }

  // ---------------------------------------------------------------- tooltip
  var tip = document.createElement('div');
  tip.id = 'mp-tip';
  tip.setAttribute('role', 'tooltip');
  document.body.appendChild(tip);
  function showTip(text, cx, cy) {
    tip.textContent = text;
    tip.style.display = 'block';
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = cx + 14, y = cy + 14;
    if (x + w > window.innerWidth - 4) x = Math.max(4, cx - w - 14);
    if (y + h > window.innerHeight - 4) y = Math.max(4, cy - h - 14);
    tip.style.left = (x + window.scrollX) + 'px';
    tip.style.top = (y + window.scrollY) + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  var titles = document.querySelectorAll('.mp-chart svg title');
  for (var k = 0; k < titles.length; k++) {
    var t = titles[k];
    if (t.parentNode && t.parentNode.setAttribute) {
      t.parentNode.setAttribute('data-tip', t.textContent);
      t.parentNode.removeChild(t);
    }
  }
  document.addEventListener('mousemove', function (e) {
    var el = e.target && e.target.closest ? e.target.closest('[data-tip]') : null;
    if (el) showTip(el.getAttribute('data-tip'), e.clientX, e.clientY);
    else if (!(e.target && e.target.classList && e.target.classList.contains('mp-canvas'))) hideTip();
  });

  // ---------------------------------------------------------------- SVG download
  var charts = document.querySelectorAll('.mp-chart');
  for (var c = 0; c < charts.length; c++) {
    (function (chart) {
      var btn = chart.querySelector('.mp-dl');
      var svg = chart.querySelector('svg');
      if (!btn || !svg) return;
      btn.addEventListener('click', function () {
        var blob = new Blob([svg.outerHTML], { type: 'image/svg+xml' });
        var a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = (chart.getAttribute('data-id') || 'chart') + '.svg';
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
      });
    })(charts[c]);
  }

  // ---------------------------------------------------------------- sortable tables
  var tables = document.querySelectorAll('table.mp-sortable');
  for (var q = 0; q < tables.length; q++) {
    (function (table) {
      var ths = table.querySelectorAll('thead th');
      for (var i = 0; i < ths.length; i++) {
        (function (th, col) {
          th.addEventListener('click', function () {
            var body = table.tBodies[0];
            var rows = Array.prototype.slice.call(body.rows);
            var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
            for (var j = 0; j < ths.length; j++) ths[j].removeAttribute('data-dir');
            th.setAttribute('data-dir', dir);
            rows.sort(function (a, b) {
              var x = a.cells[col].getAttribute('data-v') || a.cells[col].textContent;
              var y = b.cells[col].getAttribute('data-v') || b.cells[col].textContent;
              var nx = parseFloat(x), ny = parseFloat(y);
              var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
              return dir === 'asc' ? r : -r;
            });
            for (var k2 = 0; k2 < rows.length; k2++) body.appendChild(rows[k2]);
          });
        })(ths[i], i);
      }
    })(tables[q]);
  }

  // ---------------------------------------------------------------- heatmaps
  function decodeF32(b64) {
    var bin = atob(b64);
    var u8 = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return new Float32Array(u8.buffer);
  }

  function Heatmap(root, d) {
    var n = d.n;
    var vals = decodeF32(d.values);
    var info = d.info || null;
    var lo = d.domain[0], hi = d.domain[1];
    var canvas = root.querySelector('canvas');
    var status = root.querySelector('.mp-hm-status');
    var ctx = canvas.getContext('2d');
    var M = 130, STRIP = 10;
    var cssW = 0, plot = 0, dpr = window.devicePixelRatio || 1;
    var order = []; for (var i = 0; i < n; i++) order.push(i);
    var pos = order.slice();
    var scaleMode = 'linear';
    var s = 1, ox = 0, oy = 0; // CSS px per cell; offset of cell (0,0) from the plot origin
    var hover = null;
    var off = document.createElement('canvas');
    off.width = Math.max(1, n); off.height = Math.max(1, n);
    var famIndex = {};
    if (info) {
      var fams = [];
      for (var f = 0; f < n; f++) { var fam = info[f] ? info[f].family : null; if (fam && !(fam in famIndex)) { famIndex[fam] = fams.length; fams.push(fam); } }
    }
    canvas.setAttribute('data-n', String(n));
    canvas.setAttribute('data-cells', String(n * n));

    function value(i, j) { return vals[i * n + j]; }
    function norm(v) {
      var t = (v - lo) / (hi - lo || 1);
      if (scaleMode === 'sqrt') return Math.sqrt(Math.max(0, t));
      if (scaleMode === 'log') return Math.log(1 + 999 * Math.max(0, t)) / Math.log(1000);
      return t;
    }
    function rebuild() {
      var octx = off.getContext('2d');
      var img = octx.createImageData(Math.max(1, n), Math.max(1, n));
      var px = img.data;
      for (var r = 0; r < n; r++) {
        for (var c2 = 0; c2 < n; c2++) {
          var v = value(order[r], order[c2]);
          var col = (v >= 0 && isFinite(v)) ? viridis(norm(v)) : MISSING;
          var o = (r * n + c2) * 4;
          px[o] = col[0]; px[o + 1] = col[1]; px[o + 2] = col[2]; px[o + 3] = 255;
        }
      }
      octx.putImageData(img, 0, 0);
    }
    function label(i) { return info && info[i] && info[i].display_name ? info[i].display_name : d.models[i]; }
    function describe(i) {
      var x = info && info[i];
      return d.models[i] + (x ? '  [family ' + (x.family || '?') + ', type ' + (x.model_type || '?') + ']' : '');
    }
    function fmt(v) { return (v >= 0 && isFinite(v)) ? v.toFixed(6) : (v < 0 ? 'failed (' + v + ')' : 'missing'); }
    function resize() {
      cssW = Math.max(320, Math.min(root.clientWidth || 900, 1100));
      plot = cssW - M - STRIP - 8;
      dpr = window.devicePixelRatio || 1;
      canvas.style.width = cssW + 'px';
      canvas.style.height = cssW + 'px';
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssW * dpr);
    }
    function reset() { s = plot / Math.max(1, n); ox = 0; oy = 0; draw(); }
    function clampView() {
      var min = plot / Math.max(1, n), max = Math.max(min, 80);
      if (s < min) s = min; if (s > max) s = max;
      var size = n * s;
      var slack = plot * 0.5;
      if (ox > slack) ox = slack; if (oy > slack) oy = slack;
      if (ox + size < plot - slack) ox = plot - slack - size;
      if (oy + size < plot - slack) oy = plot - slack - size;
    }
    function x0() { return M + STRIP; }
    function y0() { return M + STRIP; }
    function draw() {
      clampView();
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, cssW, cssW);
      ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, cssW, cssW);
      ctx.save();
      ctx.beginPath(); ctx.rect(x0(), y0(), plot, plot); ctx.clip();
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, x0() + ox, y0() + oy, n * s, n * s);
      var first = Math.max(0, Math.floor(-ox / s)), last = Math.min(n - 1, Math.floor((plot - ox) / s));
      var firstR = Math.max(0, Math.floor(-oy / s)), lastR = Math.min(n - 1, Math.floor((plot - oy) / s));
      if (s >= 42) {
        ctx.font = '10px sans-serif'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
        for (var r = firstR; r <= lastR; r++) for (var c3 = first; c3 <= last; c3++) {
          var v = value(order[r], order[c3]);
          ctx.fillStyle = norm(v) > 0.6 ? '#000' : '#fff';
          ctx.fillText(v >= 0 ? v.toFixed(3) : '–', x0() + ox + (c3 + 0.5) * s, y0() + oy + (r + 0.5) * s);
        }
      }
      if (hover) {
        var hr = pos[hover[0]], hc = pos[hover[1]];
        ctx.strokeStyle = 'rgba(255,255,255,0.9)'; ctx.lineWidth = 1;
        ctx.strokeRect(x0() + ox, y0() + oy + hr * s, n * s, s);
        ctx.strokeRect(x0() + ox + hc * s, y0() + oy, s, n * s);
        ctx.strokeStyle = '#e00'; ctx.lineWidth = 2;
        ctx.strokeRect(x0() + ox + hc * s, y0() + oy + hr * s, s, s);
      }
      ctx.restore();
      // Family strips and labels.
      ctx.save();
      ctx.beginPath(); ctx.rect(0, y0(), cssW, plot); ctx.clip();
      for (var r2 = firstR; r2 <= lastR; r2++) {
        var m = order[r2];
        if (info && info[m] && info[m].family) { ctx.fillStyle = CATS[famIndex[info[m].family] % CATS.length]; ctx.fillRect(M, y0() + oy + r2 * s, STRIP - 2, Math.max(1, s)); }
        if (s >= 11) {
          ctx.fillStyle = (hover && hover[0] === m) ? '#e00' : '#222'; ctx.font = Math.min(12, s * 0.8) + 'px sans-serif';
          ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
          ctx.fillText(trunc(label(m)), M - 4, y0() + oy + (r2 + 0.5) * s);
        }
      }
      ctx.restore();
      ctx.save();
      ctx.beginPath(); ctx.rect(x0(), 0, plot, cssW); ctx.clip();
      for (var c4 = first; c4 <= last; c4++) {
        var m2 = order[c4];
        if (info && info[m2] && info[m2].family) { ctx.fillStyle = CATS[famIndex[info[m2].family] % CATS.length]; ctx.fillRect(x0() + ox + c4 * s, M, Math.max(1, s), STRIP - 2); }
        if (s >= 11) {
          ctx.save();
          ctx.translate(x0() + ox + (c4 + 0.5) * s, M - 4); ctx.rotate(-Math.PI / 2);
          ctx.fillStyle = (hover && hover[1] === m2) ? '#e00' : '#222'; ctx.font = Math.min(12, s * 0.8) + 'px sans-serif';
          ctx.textAlign = 'left'; ctx.textBaseline = 'middle';
          ctx.fillText(trunc(label(m2)), 0, 0);
          ctx.restore();
        }
      }
      ctx.restore();
      if (s < 11) {
        ctx.fillStyle = '#666'; ctx.font = '12px sans-serif'; ctx.textAlign = 'left'; ctx.textBaseline = 'alphabetic';
        ctx.fillText(n + ' × ' + n + ' models — zoom in for labels', 8, 20);
      }
    }
    function trunc(t) { var max = Math.floor((M - 8) / 6.2); return t.length > max ? t.slice(0, max - 1) + '…' : t; }
    function cellAt(mx, my) {
      var c5 = Math.floor((mx - x0() - ox) / s), r3 = Math.floor((my - y0() - oy) / s);
      if (mx < x0() || my < y0() || mx > x0() + plot || my > y0() + plot) return null;
      if (r3 < 0 || c5 < 0 || r3 >= n || c5 >= n) return null;
      return [order[r3], order[c5]];
    }
    function tipText(i, j) {
      return 'value ' + fmt(value(i, j)) + '\nrow: ' + describe(i) + '\ncol: ' + describe(j);
    }
    function setHover(cell, cx, cy) {
      hover = cell;
      draw();
      if (cell) {
        var text = tipText(cell[0], cell[1]);
        showTip(text, cx, cy);
        status.textContent = text.replace(/\n/g, '  ·  ');
      } else { hideTip(); }
    }
    function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
    var drag = null;
    canvas.addEventListener('mousedown', function (e) { drag = { x: e.clientX, y: e.clientY, ox: ox, oy: oy, moved: false }; e.preventDefault(); });
    window.addEventListener('mouseup', function () { drag = null; canvas.style.cursor = 'crosshair'; });
    canvas.addEventListener('mousemove', function (e) {
      if (drag) {
        var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
        if (drag.moved) { canvas.style.cursor = 'grabbing'; ox = drag.ox + dx; oy = drag.oy + dy; setHover(null); return; }
      }
      var p = local(e);
      setHover(cellAt(p[0], p[1]), e.clientX, e.clientY);
    });
    canvas.addEventListener('mouseleave', function () { setHover(null); });
    function zoomAt(mx, my, factor) {
      var px0 = mx - x0(), py0 = my - y0();
      var ns = s * factor;
      var min = plot / Math.max(1, n), max = Math.max(min, 80);
      ns = Math.max(min, Math.min(max, ns));
      ox = px0 - (px0 - ox) * ns / s; oy = py0 - (py0 - oy) * ns / s; s = ns;
      draw();
    }
    canvas.addEventListener('wheel', function (e) {
      e.preventDefault();
      var p = local(e);
      zoomAt(p[0], p[1], e.deltaY < 0 ? 1.25 : 0.8);
    }, { passive: false });
    canvas.addEventListener('dblclick', function () { reset(); });
    function ctl(name) { return root.querySelector('[data-ctl="' + name + '"]'); }
    ctl('zoom-in').addEventListener('click', function () { zoomAt(x0() + plot / 2, y0() + plot / 2, 1.5); });
    ctl('zoom-out').addEventListener('click', function () { zoomAt(x0() + plot / 2, y0() + plot / 2, 1 / 1.5); });
    ctl('reset').addEventListener('click', reset);
    ctl('scale').addEventListener('change', function (e) { scaleMode = e.target.value; rebuild(); draw(); legend(); });
    var orderSel = ctl('order');
    if (!info && !d.order) orderSel.disabled = true;
    if (!info) { var famOpt = orderSel.querySelector('option[value="family"]'); if (famOpt) famOpt.disabled = true; }
    orderSel.addEventListener('change', function (e) { setOrder(e.target.value); });
    ctl('find').addEventListener('keydown', function (e) {
      if (e.key !== 'Enter') return;
      var qv = e.target.value.toLowerCase();
      if (!qv) return;
      for (var i2 = 0; i2 < n; i2++) {
        if (d.models[i2].toLowerCase().indexOf(qv) >= 0 || label(i2).toLowerCase().indexOf(qv) >= 0) {
          s = Math.max(s, 18); var p2 = pos[i2];
          ox = plot / 2 - (p2 + 0.5) * s; oy = plot / 2 - (p2 + 0.5) * s;
          hover = [i2, i2]; draw();
          status.textContent = 'found ' + describe(i2);
          return;
        }
      }
      status.textContent = 'no model matches "' + e.target.value + '"';
    });
    function setOrder(mode) {
      order = []; for (var i3 = 0; i3 < n; i3++) order.push(i3);
      if (mode === 'clustered' && d.order && d.order.length === n) {
        order = d.order.slice();
      } else if (mode === 'family' && info) {
        order.sort(function (a, b) {
          var fa = (info[a] && info[a].family) || '\uffff', fb = (info[b] && info[b].family) || '\uffff';
          return fa < fb ? -1 : fa > fb ? 1 : a - b;
        });
      }
      for (var i4 = 0; i4 < n; i4++) pos[order[i4]] = i4;
      rebuild(); draw();
    }
    function legend() {
      var bar = root.querySelector('.mp-hm-legend-bar');
      var stops = [];
      for (var k3 = 0; k3 <= 10; k3++) {
        var v = lo + (hi - lo) * k3 / 10;
        var col = viridis(norm(v));
        stops.push('rgb(' + col.join(',') + ') ' + (k3 * 10) + '%');
      }
      bar.style.background = 'linear-gradient(to right,' + stops.join(',') + ')';
    }
    resize();
    var firstOrder = d.default_order || (info ? 'family' : d.order ? 'clustered' : 'input');
    if ((firstOrder === 'family' && info) || (firstOrder === 'clustered' && d.order)) { orderSel.value = firstOrder; setOrder(firstOrder); } else rebuild();
    reset(); legend();
    window.addEventListener('resize', function () { resize(); reset(); });
    var hook = {
      n: n,
      models: d.models,
      canvas: canvas,
      value: value,
      order: function () { return order.slice(); },
      cellCenter: function (i, j) {
        var r = canvas.getBoundingClientRect();
        return { x: r.left + x0() + ox + (pos[j] + 0.5) * s, y: r.top + y0() + oy + (pos[i] + 0.5) * s };
      },
      hover: function (i, j) { var cc = hook.cellCenter(i, j); setHover([i, j], cc.x, cc.y); return tip.textContent; },
      zoom: function (factor) { zoomAt(x0() + plot / 2, y0() + plot / 2, factor); },
      reset: reset,
      setOrder: setOrder,
      tooltip: function () { return tip.style.display === 'none' ? '' : tip.textContent; }
    };
    return hook;
  }

  var hms = document.querySelectorAll('.mp-heatmap');
  for (var h = 0; h < hms.length; h++) {
    var root = hms[h];
    var data = JSON.parse(document.getElementById(root.getAttribute('data-src')).textContent);
    api.heatmaps.push(Heatmap(root, data));
  }
  api.ready = true;
  document.documentElement.setAttribute('data-mp-ready', '1');
})();
`;

export const CSS = `
:root { --fg:#1d1d1f; --muted:#666; --line:#e3e3e3; --bg:#fafafa; --accent:#0072B2; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 18px 28px 10px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
nav { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line); padding: 6px 28px; font-size: 13px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin: 22px 0; }
section > h2 { font-size: 18px; margin: 0 0 6px; }
.mp-note { color: var(--muted); margin: 0 0 10px; max-width: 900px; }
.mp-grid { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.mp-card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px; max-width: 100%; overflow-x: auto; }
.mp-chart { position: relative; }
.mp-chart svg { display: block; max-width: none; }
.mp-dl { position: absolute; top: 6px; right: 6px; font-size: 11px; border: 1px solid var(--line); background: #fff; border-radius: 4px; cursor: pointer; padding: 1px 6px; color: var(--muted); }
.mp-stats { flex: 1 1 100%; display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; }
.mp-stat { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
.mp-stat b { display: block; font-size: 18px; }
.mp-stat span { color: var(--muted); font-size: 12px; }
table.mp-table { border-collapse: collapse; background: #fff; font-size: 12.5px; }
table.mp-table th, table.mp-table td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; white-space: nowrap; }
table.mp-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.mp-sortable th { cursor: pointer; user-select: none; background: #f3f3f3; }
table.mp-sortable th[data-dir="asc"]::after { content: " ▲"; }
table.mp-sortable th[data-dir="desc"]::after { content: " ▼"; }
.mp-table-wrap { max-height: 480px; overflow: auto; }
#mp-tip { position: absolute; display: none; z-index: 50; pointer-events: none; background: rgba(20,20,20,0.92); color: #fff; padding: 6px 9px; border-radius: 5px; font-size: 12px; white-space: pre; max-width: 720px; box-shadow: 0 2px 8px rgba(0,0,0,0.25); }
.mp-heatmap { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px; width: 100%; max-width: 1120px; }
.mp-hm-controls { display:flex; flex-wrap:wrap; gap:10px; align-items:center; margin-bottom:8px; font-size:13px; }
.mp-hm-controls button { padding: 2px 10px; }
.mp-hm-legend { display:flex; align-items:center; gap:6px; font-size:12px; color: var(--muted); }
.mp-hm-legend-bar { width: 180px; height: 12px; border-radius: 2px; }
.mp-hm-missing { display:inline-block; width:12px; height:12px; background: rgb(200,200,200); }
canvas.mp-canvas { display:block; cursor: crosshair; touch-action: none; }
.mp-hm-status { min-height: 1.4em; font-size: 12px; color: var(--muted); margin-top: 6px; white-space: pre-wrap; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
`;
