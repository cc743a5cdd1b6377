import { MISSING_RGB, categorical, rgbHex, viridis } from './colour.js';
import { encodePng } from './png.js';
import { mean, quantileSorted, sorted } from '../analysis/stats.js';

/**
 * Small, dependency-free SVG charts. Each function returns a standalone SVG document
 * (white background, for papers); the dashboard inlines the same markup and turns each
 * element's <title> into a hover tooltip.
 */

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

/** Number for labels and tooltips: up to `digits` significant decimals, no trailing zeros. */
export function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 1e5) return x.toExponential(2);
  if (Number.isInteger(x)) return String(x);
  const s = x.toFixed(digits);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** min / max without spreading (safe for arrays of any length). */
function minOf(xs: Iterable<number>, init = Infinity): number {
  let m = init;
  for (const x of xs) if (x < m) m = x;
  return m;
}
function maxOf(xs: Iterable<number>, init = -Infinity): number {
  let m = init;
  for (const x of xs) if (x > m) m = x;
  return m;
}

function n2(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** About `count` round ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) {
    hi = lo + 1;
    lo = lo - (lo === 0 ? 0 : 1);
  }
  const span = hi - lo;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const start = Math.floor(lo / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let t = start; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[0] > lo) ticks.unshift(Number((ticks[0] - step).toPrecision(12)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function open(f: Frame, title: string, id?: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" ${id ? `data-chart="${esc(id)}" ` : ''}width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" ${FONT} font-size="11">` +
    `<rect x="0" y="0" width="${f.width}" height="${f.height}" fill="#ffffff"/>` +
    `<text x="${f.width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`
  );
}

function legend(items: { name: string; colour: string }[], x: number, y: number): string {
  let out = '';
  items.forEach((it, i) => {
    const yy = y + i * 16;
    out += `<rect x="${x}" y="${yy - 9}" width="12" height="12" fill="${it.colour}" fill-opacity="0.8"/>`;
    out += `<text x="${x + 17}" y="${yy + 1}">${esc(it.name)}</text>`;
  });
  return out;
}

function yAxis(f: Frame, ticks: number[], y: (v: number) => number, label: string, fmt = (v: number) => num(v)): string {
  let out = '';
  for (const t of ticks) {
    const yy = n2(y(t));
    out += `<line x1="${f.left}" x2="${f.width - f.right}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`;
    out += `<text x="${f.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${esc(fmt(t))}</text>`;
  }
  out += `<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.height - f.bottom}" stroke="#333"/>`;
  const cy = (f.top + f.height - f.bottom) / 2;
  out += `<text transform="translate(14 ${cy}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`;
  return out;
}

function xAxis(f: Frame, ticks: { at: number; label: string }[], label: string): string {
  const y0 = f.height - f.bottom;
  let out = `<line x1="${f.left}" x2="${f.width - f.right}" y1="${y0}" y2="${y0}" stroke="#333"/>`;
  for (const t of ticks) {
    out += `<line x1="${n2(t.at)}" x2="${n2(t.at)}" y1="${f.top}" y2="${y0}" stroke="#f0f0f0"/>`;
    out += `<line x1="${n2(t.at)}" x2="${n2(t.at)}" y1="${y0}" y2="${y0 + 4}" stroke="#333"/>`;
    out += `<text x="${n2(t.at)}" y="${y0 + 16}" text-anchor="middle">${esc(t.label)}</text>`;
  }
  out += `<text x="${(f.left + f.width - f.right) / 2}" y="${f.height - 6}" text-anchor="middle">${esc(label)}</text>`;
  return out;
}

// ---------------------------------------------------------------------------------------

export interface BoxStats {
  n: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  mean: number;
  whiskerLo: number;
  whiskerHi: number;
  outliers: number[];
}

/** Box-plot statistics: quartiles by linear interpolation, Tukey whiskers (1.5 IQR). */
export function boxStats(values: readonly number[]): BoxStats | null {
  const s = sorted(values);
  if (s.length === 0) return null;
  const q1 = quantileSorted(s, 0.25)!;
  const q3 = quantileSorted(s, 0.75)!;
  const iqr = q3 - q1;
  const lo = q1 - 1.5 * iqr;
  const hi = q3 + 1.5 * iqr;
  const inside = s.filter((v) => v >= lo && v <= hi);
  return {
    n: s.length,
    min: s[0],
    q1,
    median: quantileSorted(s, 0.5)!,
    q3,
    max: s[s.length - 1],
    mean: mean(s)!,
    whiskerLo: inside.length ? inside[0] : q1,
    whiskerHi: inside.length ? inside[inside.length - 1] : q3,
    outliers: s.filter((v) => v < lo || v > hi),
  };
}

function boxTip(label: string, b: BoxStats): string {
  return `${label}\nn = ${b.n}\nmean ${num(b.mean)}\nmedian ${num(b.median)}\nQ1 ${num(b.q1)} · Q3 ${num(b.q3)}\nmin ${num(b.min)} · max ${num(b.max)}`;
}

export interface GroupValues {
  label: string;
  values: number[];
  colour?: string;
}

export function boxPlotSvg(opts: {
  id?: string;
  title: string;
  yLabel: string;
  groups: GroupValues[];
  yDomain?: [number, number];
  maxGroups?: number;
}): string {
  const maxGroups = opts.maxGroups ?? 40;
  const groups = opts.groups.slice(0, maxGroups);
  const maxLen = maxOf(groups.map((g) => g.label.length), 4);
  const rotate = groups.length > 5 || maxLen > 14;
  const bottom = rotate ? Math.min(170, 24 + maxLen * 4.4) : 48;
  const width = Math.max(480, 90 + groups.length * Math.max(34, rotate ? 34 : maxLen * 7));
  const f: Frame = { width, height: 300 + bottom, left: 62, right: 16, top: 34, bottom };
  const all = groups.flatMap((g) => g.values);
  const [lo, hi] = opts.yDomain ?? [minOf(all, 0), maxOf(all, 1e-9)];
  const ticks = niceTicks(lo, hi);
  const y0 = ticks[0];
  const y1 = ticks[ticks.length - 1];
  const y = (v: number) => f.height - f.bottom - ((v - y0) / (y1 - y0)) * (f.height - f.top - f.bottom);
  const bw = (f.width - f.left - f.right) / Math.max(1, groups.length);
  let out = open(f, opts.title, opts.id) + yAxis(f, ticks, y, opts.yLabel);
  groups.forEach((g, i) => {
    const b = boxStats(g.values);
    const cx = f.left + bw * (i + 0.5);
    const colour = g.colour ?? categorical(i);
    const lx = n2(cx);
    const ly = f.height - f.bottom + 14;
    out += rotate
      ? `<text transform="translate(${lx} ${ly}) rotate(-40)" text-anchor="end">${esc(g.label)}</text>`
      : `<text x="${lx}" y="${ly}" text-anchor="middle">${esc(g.label)}</text><text x="${lx}" y="${ly + 13}" text-anchor="middle" fill="#666">n=${g.values.length}</text>`;
    if (!b) return;
    const w = Math.min(40, bw * 0.6);
    out += `<g class="box" data-group="${esc(g.label)}"><title>${esc(boxTip(g.label, b))}</title>`;
    out += `<line x1="${lx}" x2="${lx}" y1="${n2(y(b.whiskerLo))}" y2="${n2(y(b.whiskerHi))}" stroke="#333"/>`;
    for (const wv of [b.whiskerLo, b.whiskerHi]) {
      out += `<line x1="${n2(cx - w / 4)}" x2="${n2(cx + w / 4)}" y1="${n2(y(wv))}" y2="${n2(y(wv))}" stroke="#333"/>`;
    }
    out += `<rect x="${n2(cx - w / 2)}" y="${n2(y(b.q3))}" width="${n2(w)}" height="${n2(Math.max(1, y(b.q1) - y(b.q3)))}" fill="${colour}" fill-opacity="0.55" stroke="#333"/>`;
    out += `<line x1="${n2(cx - w / 2)}" x2="${n2(cx + w / 2)}" y1="${n2(y(b.median))}" y2="${n2(y(b.median))}" stroke="#000" stroke-width="2"/>`;
    out += `<circle cx="${lx}" cy="${n2(y(b.mean))}" r="2.5" fill="#fff" stroke="#000"/>`;
    out += '</g>';
    for (const o of b.outliers) {
      out += `<circle cx="${lx}" cy="${n2(y(o))}" r="2.5" fill="none" stroke="${colour}"><title>${esc(`${g.label}: ${num(o, 6)}`)}</title></circle>`;
    }
  });
  if (opts.groups.length > groups.length) {
    out += `<text x="${f.width - f.right}" y="30" text-anchor="end" fill="#666">showing ${groups.length} of ${opts.groups.length} groups</text>`;
  }
  return `${out}</svg>`;
}

/** Horizontal quartile bars: min–max line, Q1–Q3 bar, median tick, mean dot, one row per group. */
export function quartileBarsSvg(opts: { id?: string; title: string; xLabel: string; groups: GroupValues[]; xDomain?: [number, number]; maxGroups?: number }): string {
  const groups = opts.groups.slice(0, opts.maxGroups ?? 120);
  const maxLen = Math.min(48, maxOf(groups.map((g) => g.label.length), 6));
  const row = 20;
  const f: Frame = { width: 760, height: 80 + Math.max(1, groups.length) * row, left: 24 + maxLen * 6.2, right: 70, top: 34, bottom: 44 };
  const all = groups.flatMap((g) => g.values);
  const [lo, hi] = opts.xDomain ?? [minOf(all, 0), maxOf(all, 1e-9)];
  const ticks = niceTicks(lo, hi);
  const x0 = ticks[0];
  const x1 = ticks[ticks.length - 1];
  const x = (v: number) => f.left + ((v - x0) / (x1 - x0)) * (f.width - f.left - f.right);
  let out = open(f, opts.title, opts.id) + xAxis(f, ticks.map((t) => ({ at: x(t), label: num(t) })), opts.xLabel);
  groups.forEach((g, i) => {
    const cy = f.top + i * row + row / 2;
    const label = g.label.length > maxLen ? `${g.label.slice(0, maxLen - 1)}…` : g.label;
    out += `<text x="${f.left - 8}" y="${n2(cy)}" text-anchor="end" dominant-baseline="middle">${esc(label)}</text>`;
    const b = boxStats(g.values);
    if (!b) return;
    const colour = g.colour ?? categorical(i);
    out += `<g class="qbar" data-group="${esc(g.label)}"><title>${esc(boxTip(g.label, b))}</title>`;
    out += `<rect x="${f.left}" y="${n2(cy - row / 2)}" width="${f.width - f.left - f.right}" height="${row}" fill="#000" fill-opacity="0"/>`;
    out += `<line x1="${n2(x(b.min))}" x2="${n2(x(b.max))}" y1="${n2(cy)}" y2="${n2(cy)}" stroke="#555"/>`;
    out += `<rect x="${n2(x(b.q1))}" y="${n2(cy - 6)}" width="${n2(Math.max(1.5, x(b.q3) - x(b.q1)))}" height="12" fill="${colour}" fill-opacity="0.7"/>`;
    out += `<line x1="${n2(x(b.median))}" x2="${n2(x(b.median))}" y1="${n2(cy - 8)}" y2="${n2(cy + 8)}" stroke="#000" stroke-width="2"/>`;
    out += `<circle cx="${n2(x(b.mean))}" cy="${n2(cy)}" r="2.5" fill="#fff" stroke="#000"/>`;
    out += `<text x="${f.width - f.right + 6}" y="${n2(cy)}" dominant-baseline="middle" fill="#666">n=${b.n}</text></g>`;
  });
  if (opts.groups.length > groups.length) {
    out += `<text x="${f.width - f.right}" y="30" text-anchor="end" fill="#666">showing ${groups.length} of ${opts.groups.length} groups</text>`;
  }
  return `${out}</svg>`;
}

export interface ScatterSeries {
  name: string;
  colour: string;
  points: { x: number; y: number; label: string }[];
  /** y = slope · log10(x + 1) + intercept. */
  trend?: { slope: number; intercept: number } | null;
}

/** Scatter with x on a log axis (log10(x + 1), so 0 downloads sits at the left edge), trend lines. */
export function scatterLogSvg(opts: { id?: string; title: string; xLabel: string; yLabel: string; series: ScatterSeries[] }): string {
  const f: Frame = { width: 720, height: 420, left: 62, right: 150, top: 34, bottom: 46 };
  const pts = opts.series.flatMap((s) => s.points);
  const lx = (v: number) => Math.log10(Math.max(0, v) + 1);
  const maxX = maxOf(pts.map((p) => lx(p.x)), 1);
  const decades = Math.ceil(maxX);
  const yTicks = niceTicks(minOf(pts.map((p) => p.y), 0), maxOf(pts.map((p) => p.y), 1e-9));
  const y0 = yTicks[0];
  const y1 = yTicks[yTicks.length - 1];
  const x = (v: number) => f.left + (lx(v) / decades) * (f.width - f.left - f.right);
  const y = (v: number) => f.height - f.bottom - ((v - y0) / (y1 - y0)) * (f.height - f.top - f.bottom);
  const xt = [{ at: x(0), label: '0' }];
  for (let d = 1; d <= decades; d++) {
    const v = 10 ** d;
    xt.push({ at: f.left + (Math.log10(v + 1) / decades) * (f.width - f.left - f.right), label: v >= 1e6 ? `${v / 1e6}M` : v >= 1000 ? `${v / 1000}k` : String(v) });
  }
  let out = open(f, opts.title, opts.id) + yAxis(f, yTicks, y, opts.yLabel) + xAxis(f, xt, opts.xLabel);
  for (const s of opts.series) {
    for (const p of s.points) {
      out += `<circle class="pt" cx="${n2(x(p.x))}" cy="${n2(y(p.y))}" r="3.5" fill="${s.colour}" fill-opacity="0.6" stroke="${s.colour}"><title>${esc(`${p.label}\n${s.name}\ndownloads: ${p.x}\noverlap: ${num(p.y, 6)}`)}</title></circle>`;
    }
  }
  for (const s of opts.series) {
    if (!s.trend || s.points.length < 2) continue;
    const xs = s.points.map((p) => lx(p.x));
    const a = minOf(xs);
    const b = maxOf(xs);
    const px = (l: number) => f.left + (l / decades) * (f.width - f.left - f.right);
    const clampY = (v: number) => Math.max(y0, Math.min(y1, v));
    out += `<line class="trend" x1="${n2(px(a))}" y1="${n2(y(clampY(s.trend.slope * a + s.trend.intercept)))}" x2="${n2(px(b))}" y2="${n2(y(clampY(s.trend.slope * b + s.trend.intercept)))}" stroke="${s.colour}" stroke-width="2" stroke-dasharray="6 3"><title>${esc(`${s.name} trend: overlap = ${num(s.trend.slope, 5)} · log10(downloads + 1) + ${num(s.trend.intercept, 5)}`)}</title></line>`;
  }
  out += legend(
    opts.series.map((s) => ({ name: `${s.name} (n=${s.points.length})`, colour: s.colour })),
    f.width - f.right + 12,
    f.top + 12,
  );
  out += `<text x="${f.width - f.right + 12}" y="${f.top + 12 + opts.series.length * 16 + 8}" fill="#666">dashed: trend</text>`;
  return `${out}</svg>`;
}

export interface HistSeries {
  name: string;
  colour: string;
  counts: number[];
}

/** Grouped bars over categories (bins); `share` plots counts / total of each series. */
export function histogramSvg(opts: { id?: string; title: string; xLabel: string; categories: string[]; series: HistSeries[]; share?: boolean }): string {
  const f: Frame = { width: 720, height: 380, left: 62, right: 150, top: 34, bottom: 50 };
  const totals = opts.series.map((s) => s.counts.reduce((a, b) => a + b, 0));
  const val = (si: number, c: number) => (opts.share ? (totals[si] ? c / totals[si] : 0) : c);
  const max = maxOf(opts.series.flatMap((s, si) => s.counts.map((c) => val(si, c))), opts.share ? 0.01 : 1);
  const ticks = niceTicks(0, max);
  const top = ticks[ticks.length - 1];
  const y = (v: number) => f.height - f.bottom - (v / top) * (f.height - f.top - f.bottom);
  const cw = (f.width - f.left - f.right) / Math.max(1, opts.categories.length);
  const bw = (cw * 0.8) / Math.max(1, opts.series.length);
  let out = open(f, opts.title, opts.id) + yAxis(f, ticks, y, opts.share ? 'share' : 'count', (v) => (opts.share ? `${num(v * 100, 1)}%` : num(v)));
  opts.categories.forEach((cat, ci) => {
    const cx = f.left + cw * (ci + 0.5);
    out += `<text x="${n2(cx)}" y="${f.height - f.bottom + 16}" text-anchor="middle">${esc(cat)}</text>`;
    opts.series.forEach((s, si) => {
      const c = s.counts[ci] ?? 0;
      const v = val(si, c);
      const bx = cx - (cw * 0.8) / 2 + si * bw;
      const share = totals[si] ? c / totals[si] : 0;
      out += `<rect class="bar" x="${n2(bx)}" y="${n2(y(v))}" width="${n2(Math.max(1, bw - 1))}" height="${n2(Math.max(0, y(0) - y(v)))}" fill="${s.colour}" fill-opacity="0.8"><title>${esc(`${s.name} ${cat}\ncount ${c} (${num(share * 100, 1)}% of ${totals[si]})`)}</title></rect>`;
    });
  });
  out += `<text x="${(f.left + f.width - f.right) / 2}" y="${f.height - 6}" text-anchor="middle">${esc(opts.xLabel)}</text>`;
  out += legend(
    opts.series.map((s, si) => ({ name: `${s.name} (n=${totals[si]})`, colour: s.colour })),
    f.width - f.right + 12,
    f.top + 12,
  );
  return `${out}</svg>`;
}

/** Empirical CDFs as step lines. */
export function cdfSvg(opts: { id?: string; title: string; xLabel: string; series: { name: string; colour: string; values: number[] }[] }): string {
  const f: Frame = { width: 720, height: 380, left: 62, right: 150, top: 34, bottom: 46 };
  const all = opts.series.flatMap((s) => s.values);
  const xTicks = niceTicks(minOf(all, 0), maxOf(all, 1e-9));
  const x0 = xTicks[0];
  const x1 = xTicks[xTicks.length - 1];
  const x = (v: number) => f.left + ((v - x0) / (x1 - x0)) * (f.width - f.left - f.right);
  const y = (v: number) => f.height - f.bottom - v * (f.height - f.top - f.bottom);
  let out =
    open(f, opts.title, opts.id) +
    yAxis(f, [0, 0.25, 0.5, 0.75, 1], y, 'cumulative share') +
    xAxis(f, xTicks.map((t) => ({ at: x(t), label: num(t) })), opts.xLabel);
  for (const s of opts.series) {
    const v = sorted(s.values);
    if (!v.length) continue;
    let d = `M${n2(x(x0))},${n2(y(0))}`;
    v.forEach((val, i) => {
      d += ` H${n2(x(val))} V${n2(y((i + 1) / v.length))}`;
    });
    d += ` H${n2(x(x1))}`;
    const med = quantileSorted(v, 0.5);
    out += `<path class="cdf" d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"><title>${esc(`${s.name}: n=${v.length}, median ${num(med)}`)}</title></path>`;
  }
  out += legend(
    opts.series.map((s) => ({ name: `${s.name} (n=${s.values.length})`, colour: s.colour })),
    f.width - f.right + 12,
    f.top + 12,
  );
  return `${out}</svg>`;
}

/** ROC curve with the best (Youden) and target-TPR points. */
export function rocSvg(opts: {
  id?: string;
  title: string;
  curve: { fpr: number; tpr: number; threshold: number | null }[];
  auc: number;
  points: { name: string; fpr: number; tpr: number; threshold: number; colour: string }[];
}): string {
  const f: Frame = { width: 640, height: 480, left: 62, right: 200, top: 34, bottom: 46 };
  const side = Math.min(f.width - f.left - f.right, f.height - f.top - f.bottom);
  f.right = f.width - f.left - side;
  const x = (v: number) => f.left + v * side;
  const y = (v: number) => f.top + (1 - v) * side;
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  let out =
    open(f, opts.title, opts.id) +
    yAxis(f, ticks, y, 'true positive rate (recall)') +
    xAxis(f, ticks.map((t) => ({ at: x(t), label: num(t) })), 'false positive rate');
  out += `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 4"/>`;
  const d = opts.curve.map((p, i) => `${i ? 'L' : 'M'}${n2(x(p.fpr))},${n2(y(p.tpr))}`).join(' ');
  out += `<path class="roc" d="${d}" fill="none" stroke="#0072B2" stroke-width="2"><title>${esc(`ROC, AUC ${num(opts.auc, 5)}`)}</title></path>`;
  for (const p of opts.curve) {
    if (p.threshold === null) continue;
    out += `<circle cx="${n2(x(p.fpr))}" cy="${n2(y(p.tpr))}" r="2" fill="#0072B2"><title>${esc(`threshold ${num(p.threshold, 6)}\nTPR ${num(p.tpr)} · FPR ${num(p.fpr)}`)}</title></circle>`;
  }
  for (const p of opts.points) {
    out += `<circle cx="${n2(x(p.fpr))}" cy="${n2(y(p.tpr))}" r="6" fill="none" stroke="${p.colour}" stroke-width="2.5"><title>${esc(`${p.name}\nthreshold ${num(p.threshold, 6)}\nTPR ${num(p.tpr)} · FPR ${num(p.fpr)}`)}</title></circle>`;
  }
  out += legend(
    [{ name: `AUC ${num(opts.auc, 5)}`, colour: '#0072B2' }, ...opts.points.map((p) => ({ name: p.name, colour: p.colour }))],
    f.left + side + 12,
    f.top + 12,
  );
  return `${out}</svg>`;
}

// ---------------------------------------------------------------------------------------

export interface HeatmapInput {
  models: string[];
  values: number[][];
  /** Optional per-model family (colour strip) and label. */
  families?: (string | null)[];
  labels?: string[];
  title: string;
  id?: string;
}

export function valueDomain(values: number[][]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of values) {
    for (const v of row) {
      if (!Number.isFinite(v) || v < 0) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  return lo === hi ? [lo, lo + 1] : [lo, hi];
}

/**
 * Static heatmap: vector cells up to 100 models, a pixel-per-cell PNG (rendered pixelated)
 * above that; model labels up to 60 models; family strips when families are given.
 */
export function heatmapSvg(h: HeatmapInput): string {
  const n = h.models.length;
  const showLabels = n <= 60;
  const labels = h.labels ?? h.models;
  const maxLen = showLabels ? Math.min(40, maxOf(labels.map((l) => l.length), 4)) : 0;
  const margin = showLabels ? 16 + maxLen * 5.6 : 24;
  const plot = Math.max(300, Math.min(900, n * 14));
  const cell = plot / Math.max(1, n);
  const strip = h.families ? 8 : 0;
  const f: Frame = { width: margin + strip + plot + 90, height: 34 + margin + strip + plot + 26, left: margin + strip, right: 90, top: 34 + margin + strip, bottom: 26 };
  const [lo, hi] = valueDomain(h.values);
  const colour = (v: number) => (Number.isFinite(v) && v >= 0 ? viridis((v - lo) / (hi - lo)) : MISSING_RGB);
  let out = open(f, h.title, h.id);
  if (n <= 100) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        out += `<rect x="${n2(f.left + j * cell)}" y="${n2(f.top + i * cell)}" width="${n2(cell + 0.3)}" height="${n2(cell + 0.3)}" fill="${rgbHex(colour(h.values[i][j]))}"/>`;
      }
    }
  } else {
    const rgb = new Uint8Array(n * n * 3);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) rgb.set(colour(h.values[i][j]), (i * n + j) * 3);
    const png = encodePng(n, n, rgb).toString('base64');
    out += `<image x="${f.left}" y="${f.top}" width="${plot}" height="${plot}" preserveAspectRatio="none" style="image-rendering:pixelated" image-rendering="optimizeSpeed" href="data:image/png;base64,${png}"/>`;
  }
  if (h.families) {
    const fams = [...new Set(h.families.filter((x): x is string => !!x))];
    h.families.forEach((fam, i) => {
      const c = fam ? categorical(fams.indexOf(fam)) : '#ffffff';
      out += `<rect x="${n2(f.left - strip)}" y="${n2(f.top + i * cell)}" width="${strip - 1}" height="${n2(cell + 0.3)}" fill="${c}"/>`;
      out += `<rect x="${n2(f.left + i * cell)}" y="${n2(f.top - strip)}" width="${n2(cell + 0.3)}" height="${strip - 1}" fill="${c}"/>`;
    });
  }
  if (showLabels) {
    const fs = Math.max(6, Math.min(10, cell * 0.8));
    labels.forEach((l, i) => {
      const t = l.length > maxLen ? `${l.slice(0, maxLen - 1)}…` : l;
      out += `<text x="${n2(f.left - strip - 4)}" y="${n2(f.top + (i + 0.5) * cell)}" text-anchor="end" dominant-baseline="middle" font-size="${n2(fs)}">${esc(t)}</text>`;
      out += `<text transform="translate(${n2(f.left + (i + 0.5) * cell)} ${n2(f.top - strip - 4)}) rotate(-90)" dominant-baseline="middle" font-size="${n2(fs)}">${esc(t)}</text>`;
    });
  }
  // Colour bar.
  const bx = f.left + plot + 24;
  const steps = 24;
  for (let k = 0; k < steps; k++) {
    const t = 1 - k / steps;
    out += `<rect x="${bx}" y="${n2(f.top + (k * plot) / steps)}" width="16" height="${n2(plot / steps + 0.5)}" fill="${rgbHex(viridis(t))}"/>`;
  }
  out += `<text x="${bx + 20}" y="${f.top + 8}">${esc(num(hi))}</text><text x="${bx + 20}" y="${f.top + plot}">${esc(num(lo))}</text>`;
  out += `<rect x="${bx}" y="${f.top + plot + 6}" width="16" height="8" fill="${rgbHex(MISSING_RGB)}"/><text x="${bx + 20}" y="${f.top + plot + 14}" font-size="9">failed</text>`;
  return `${out}</svg>`;
}

// ---------------------------------------------------------------------------------------

export interface DendrogramInput {
  id?: string;
  title: string;
  /** Leaf labels in leaf order. */
  labels: string[];
  /** Leaf order (indices into the original model list) — labels[k] is leaf order[k]. */
  order: number[];
  /** Merges bottom-up: children are leaves (≥ 0, original indices) or earlier merges (−1 − k). */
  merges: { left: number; right: number; height: number; size: number }[];
  /** Horizontal guide (a height, e.g. 1 − threshold). */
  cut?: number;
  /** Per-leaf colour (original index → colour). */
  colours?: (string | null)[];
}

/**
 * A dendrogram with leaves top to bottom (in the order of the heatmap rows) and merge
 * height growing to the right; an optional dashed cut line. Labels up to 200 leaves.
 */
export function dendrogramSvg(d: DendrogramInput): string {
  const n = d.order.length;
  const showLabels = n <= 200;
  const row = n <= 60 ? 14 : n <= 200 ? 9 : Math.max(1, 900 / Math.max(1, n));
  const maxLen = showLabels ? Math.min(44, maxOf(d.labels.map((l) => l.length), 4)) : 0;
  const plotW = 360;
  const f: Frame = { width: 20 + plotW + 12 + maxLen * 5.6 + 20, height: 40 + n * row + 34, left: 20, right: 12 + maxLen * 5.6 + 20, top: 40, bottom: 34 };
  const maxH = Math.max(1e-9, maxOf(d.merges.map((m) => m.height), 0), d.cut ?? 0);
  // x: height 0 at the right (next to the labels), maxH at the left.
  const x = (h: number) => f.left + plotW * (1 - h / maxH);
  const pos = new Map<number, number>();
  d.order.forEach((leaf, k) => pos.set(leaf, f.top + (k + 0.5) * row));
  const mergeY: number[] = [];
  const yOf = (c: number) => (c >= 0 ? pos.get(c)! : mergeY[-1 - c]);
  const hOf = (c: number) => (c >= 0 ? 0 : d.merges[-1 - c].height);
  let out = open(f, d.title, d.id);
  d.merges.forEach((m, k) => {
    const y1 = yOf(m.left);
    const y2 = yOf(m.right);
    mergeY[k] = (y1 + y2) / 2;
    const xm = x(m.height);
    out +=
      `<path d="M${n2(x(hOf(m.left)))} ${n2(y1)}H${n2(xm)}V${n2(y2)}H${n2(x(hOf(m.right)))}" fill="none" stroke="#444" stroke-width="1">` +
      `<title>${esc(`merge at distance ${num(m.height)} (score ${num(1 - m.height)}), ${m.size} models`)}</title></path>`;
  });
  if (d.cut !== undefined) {
    out += `<line x1="${n2(x(d.cut))}" y1="${f.top - 6}" x2="${n2(x(d.cut))}" y2="${n2(f.top + n * row)}" stroke="#D55E00" stroke-dasharray="4 3"><title>${esc(`family cut: distance ${num(d.cut)} (score ${num(1 - d.cut)})`)}</title></line>`;
  }
  if (showLabels) {
    const fs = Math.max(6, Math.min(10, row * 0.85));
    d.order.forEach((leaf, k) => {
      const l = d.labels[k];
      const t = l.length > maxLen ? `${l.slice(0, maxLen - 1)}…` : l;
      const c = d.colours?.[leaf];
      if (c) out += `<rect x="${n2(f.left + plotW + 2)}" y="${n2(f.top + k * row + 1)}" width="6" height="${n2(Math.max(1, row - 2))}" fill="${c}"/>`;
      out += `<text x="${n2(f.left + plotW + 12)}" y="${n2(f.top + (k + 0.5) * row)}" dominant-baseline="middle" font-size="${n2(fs)}">${esc(t)}</text>`;
    });
  }
  const ticks = niceTicks(0, maxH, 4).filter((t) => t >= 0 && t <= maxH + 1e-9);
  const yb = f.top + n * row + 4;
  out += `<line x1="${f.left}" y1="${n2(yb)}" x2="${f.left + plotW}" y2="${n2(yb)}" stroke="#888"/>`;
  for (const t of ticks) out += `<text x="${n2(x(t))}" y="${n2(yb + 12)}" text-anchor="middle" font-size="9">${esc(num(t, 3))}</text>`;
  out += `<text x="${f.left + plotW / 2}" y="${n2(yb + 26)}" text-anchor="middle">distance 1 − score (single linkage)</text>`;
  return `${out}</svg>`;
}

export interface ForestNode {
  id: string;
  parent: string | null;
  /** Colour key (e.g. the family). */
  group: string;
  /** Shown in the tooltip. */
  tip: string;
  /** Dashed edge (e.g. a copy). */
  dashed?: boolean;
}

/**
 * A forest drawn as indented trees (one row per model, children under their parent with
 * elbow connectors), trees ordered by size; node colour by group.
 */
export function forestSvg(opts: { id?: string; title: string; nodes: ForestNode[]; maxRows?: number }): string {
  const byId = new Map(opts.nodes.map((x) => [x.id, x]));
  const children = new Map<string, ForestNode[]>();
  const roots: ForestNode[] = [];
  for (const x of opts.nodes) {
    if (x.parent && byId.has(x.parent) && x.parent !== x.id) {
      const list = children.get(x.parent);
      if (list) list.push(x);
      else children.set(x.parent, [x]);
    } else roots.push(x);
  }
  const sizeMemo = new Map<string, number>();
  const size = (x: ForestNode): number => {
    const m = sizeMemo.get(x.id);
    if (m !== undefined) return m;
    let s = 1;
    for (const c of children.get(x.id) ?? []) s += size(c);
    sizeMemo.set(x.id, s);
    return s;
  };
  const bySize = (a: ForestNode, b: ForestNode) => size(b) - size(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  roots.sort(bySize);
  const rows: { node: ForestNode; depth: number }[] = [];
  const visit = (x: ForestNode, depth: number) => {
    rows.push({ node: x, depth });
    for (const c of [...(children.get(x.id) ?? [])].sort(bySize)) visit(c, depth + 1);
  };
  for (const r of roots) visit(r, 0);
  const maxRows = opts.maxRows ?? 2000;
  const shown = rows.slice(0, maxRows);
  const groups = [...new Set(opts.nodes.map((x) => x.group))];
  const row = 15;
  const indent = 16;
  const maxDepth = maxOf(shown.map((r) => r.depth), 0);
  const maxLen = Math.min(60, maxOf(shown.map((r) => r.node.id.length), 4));
  const f: Frame = { width: 20 + (maxDepth + 1) * indent + maxLen * 6.2 + 40, height: 36 + shown.length * row + 20, left: 20, right: 20, top: 36, bottom: 20 };
  let out = open(f, opts.title, opts.id);
  const yOf = new Map<string, number>();
  shown.forEach((r, k) => yOf.set(r.node.id, f.top + (k + 0.5) * row));
  shown.forEach((r, k) => {
    const y = f.top + (k + 0.5) * row;
    const xN = f.left + r.depth * indent + 5;
    const p = r.node.parent;
    if (p && yOf.has(p)) {
      const xp = f.left + (r.depth - 1) * indent + 5;
      out += `<path d="M${n2(xp)} ${n2(yOf.get(p)! + 4)}V${n2(y)}H${n2(xN - 4)}" fill="none" stroke="#999"${r.node.dashed ? ' stroke-dasharray="2 2"' : ''}/>`;
    }
    const colour = categorical(groups.indexOf(r.node.group));
    out +=
      `<g class="node" data-model="${esc(r.node.id)}"><title>${esc(r.node.tip)}</title>` +
      `<circle cx="${n2(xN)}" cy="${n2(y)}" r="4" fill="${colour}"${r.depth === 0 ? ' stroke="#000" stroke-width="1.2"' : ''}/>` +
      `<text x="${n2(xN + 8)}" y="${n2(y)}" dominant-baseline="middle"${r.depth === 0 ? ' font-weight="bold"' : ''}>${esc(r.node.id.length > maxLen ? `${r.node.id.slice(0, maxLen - 1)}…` : r.node.id)}</text></g>`;
  });
  if (rows.length > shown.length) {
    out += `<text x="${f.left}" y="${n2(f.top + shown.length * row + 14)}" fill="#666">… ${rows.length - shown.length} more in parents.csv</text>`;
  }
  return `${out}</svg>`;
}
