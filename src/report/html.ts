import { CLIENT_JS, CSS } from './client.js';
import { esc, valueDomain } from './svg.js';

/** A self-contained dashboard page: all data, styles and scripts inline (no CDN). */

export interface HeatmapModelInfo {
  family: string | null;
  model_type: string | null;
  display_name: string | null;
}

export interface HeatmapData {
  title: string;
  models: string[];
  values: number[][];
  info?: (HeatmapModelInfo | null)[];
  /** Clustered leaf order (indices into models), e.g. from a hierarchical clustering. */
  order?: number[];
  /** The order shown first (and used by the static SVG): default 'family' with info, else 'clustered' with order. */
  defaultOrder?: 'family' | 'clustered' | 'input';
}

export type Item =
  | { kind: 'chart'; id: string; svg: string }
  | { kind: 'heatmap'; id: string; data: HeatmapData }
  | { kind: 'stats'; entries: [string, string][] }
  | { kind: 'table'; head: string[]; rows: (string | number | null)[][]; numeric?: boolean[]; caption?: string }
  | { kind: 'text'; text: string };

export interface Section {
  title: string;
  note?: string;
  items: Item[];
}

export interface DashboardSpec {
  title: string;
  subtitle?: string;
  sections: Section[];
}

/** JSON that is safe inside a <script> element. */
export function scriptJson(x: unknown): string {
  return JSON.stringify(x).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function encodeValues(values: number[][]): string {
  const n = values.length;
  const f32 = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) f32[i * n + j] = values[i][j];
  return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64');
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'section';
}

function renderItem(item: Item, k: number): string {
  switch (item.kind) {
    case 'chart':
      return `<div class="mp-card mp-chart" data-id="${esc(item.id)}"><button class="mp-dl" type="button" title="download SVG">SVG</button>${item.svg}</div>`;
    case 'heatmap': {
      const d = item.data;
      const src = `mp-hm-data-${k}-${slug(item.id)}`;
      const payload = {
        title: d.title,
        n: d.models.length,
        models: d.models,
        info: d.info ?? null,
        domain: valueDomain(d.values),
        values: encodeValues(d.values),
        order: d.order ?? null,
        default_order: d.defaultOrder ?? null,
      };
      return (
        `<div class="mp-heatmap" data-src="${src}" data-id="${esc(item.id)}">` +
        `<div class="mp-hm-controls">` +
        `<strong>${esc(d.title)}</strong>` +
        `<button type="button" data-ctl="zoom-in" title="zoom in">+</button>` +
        `<button type="button" data-ctl="zoom-out" title="zoom out">−</button>` +
        `<button type="button" data-ctl="reset" title="reset view (or double-click)">reset</button>` +
        `<label>order <select data-ctl="order"><option value="family">by family</option>${d.order ? '<option value="clustered">clustered</option>' : ''}<option value="input">as given</option></select></label>` +
        `<label>scale <select data-ctl="scale"><option value="linear">linear</option><option value="sqrt">sqrt</option><option value="log">log</option></select></label>` +
        `<input data-ctl="find" type="search" placeholder="find model… (Enter)" size="22">` +
        `<span class="mp-hm-legend">${esc(String(Number(payload.domain[0].toPrecision(4))))}<span class="mp-hm-legend-bar"></span>${esc(String(Number(payload.domain[1].toPrecision(4))))} <span class="mp-hm-missing"></span> failed / missing</span>` +
        `</div>` +
        `<canvas class="mp-canvas" aria-label="${esc(d.title)}: ${payload.n} by ${payload.n} heatmap; hover a cell for its value"></canvas>` +
        `<div class="mp-hm-status">wheel or +/− to zoom, drag to pan, hover for values</div>` +
        `<script type="application/json" id="${src}">${scriptJson(payload)}</script>` +
        `</div>`
      );
    }
    case 'stats':
      return `<div class="mp-stats">${item.entries.map(([k2, v]) => `<div class="mp-stat"><b>${esc(v)}</b><span>${esc(k2)}</span></div>`).join('')}</div>`;
    case 'table': {
      const head = item.head.map((h) => `<th>${esc(h)}</th>`).join('');
      const rows = item.rows
        .map(
          (r) =>
            `<tr>${r
              .map((v, i) => {
                const isNum = item.numeric?.[i] ?? typeof v === 'number';
                const text = v === null || v === undefined ? '-' : String(v);
                return `<td${isNum ? ' class="num"' : ''}>${esc(text)}</td>`;
              })
              .join('')}</tr>`,
        )
        .join('');
      const caption = item.caption ? `<caption style="text-align:left;color:#666;padding:4px 0">${esc(item.caption)}</caption>` : '';
      return `<div class="mp-card mp-table-wrap"><table class="mp-table mp-sortable">${caption}<thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;
    }
    case 'text':
      return `<p class="mp-note">${esc(item.text)}</p>`;
  }
}

export function renderDashboard(spec: DashboardSpec): string {
  let k = 0;
  const nav = spec.sections.map((s) => `<a href="#${slug(s.title)}">${esc(s.title)}</a>`).join('');
  const body = spec.sections
    .map(
      (s) =>
        `<section id="${slug(s.title)}"><h2>${esc(s.title)}</h2>${s.note ? `<p class="mp-note">${esc(s.note)}</p>` : ''}` +
        `<div class="mp-grid">${s.items.map((it) => renderItem(it, k++)).join('')}</div></section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(spec.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${esc(spec.title)}</h1>${spec.subtitle ? `<p>${esc(spec.subtitle)}</p>` : ''}</header>
<nav>${nav}</nav>
<main>
${body}
</main>
<footer>Generated by modelprint on ${esc(new Date().toISOString())}. Self-contained: opens offline. Hover charts for exact values; each chart's SVG button downloads it.</footer>
<script>${CLIENT_JS.replace(/<\/script/gi, '<\\/script')}</script>
</body>
</html>
`;
}
