/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from './helpers/chromium.js';
import { runCli, tmpDir, ROOT } from './helpers/cli.js';
import { writeMatrixDashboard } from '../src/report/index.js';
import { binCounts, histogramEdges, valueDomain, valueHistogramSvg } from '../src/report/svg.js';
import { familyColours } from '../src/report/colour.js';

const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
const fx = (f: string) => path.join(ROOT, 'test', 'fixtures', 'analysis', f);

/** CIE76 ΔE between two #rrggbb colours. */
function deltaE(a: string, b: string): number {
  const lab = (hex: string) => {
    const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((v) => (v > 0.04045 ? ((v + 0.055) / 1.055) ** 2.4 : v / 12.92));
    const [x, y, z] = [
      (c[0] * 0.4124 + c[1] * 0.3576 + c[2] * 0.1805) / 0.95047,
      c[0] * 0.2126 + c[1] * 0.7152 + c[2] * 0.0722,
      (c[0] * 0.0193 + c[1] * 0.1192 + c[2] * 0.9505) / 1.08883,
    ].map((t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116));
    return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
  };
  const [p, q] = [lab(a), lab(b)];
  return Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
}

/** n models in `families` families; same-family cells 0.95–1, others 0.894–0.93 (input_output cosine-like). */
function bigMatrix(n: number, families: number) {
  const models = Array.from({ length: n }, (_, i) => `org${i % families}/model-${String(i).padStart(3, '0')}`);
  const info = models.map((m, i) => ({ model_id: m, family: `family-${i % families}`, model_type: i < families ? 'Base' : 'Finetune', display_name: m }));
  const matrix = models.map((_, i) => models.map((__, j) => (i === j ? 1 : i % families === j % families ? 0.95 + ((i + j) % 5) / 100 : 0.894 + ((i * 7 + j) % 37) / 1000)));
  return { models, info, matrix };
}

describe('dashboard scales, palette and bins', () => {
  it('fixes the colour scale to the metric range unless asked for the data range', () => {
    const v = [
      [1, 0.894],
      [0.9, 1],
    ];
    expect(valueDomain(v)).toEqual([0, 1]);
    expect(valueDomain(v, 'data')).toEqual([0.894, 1]);
    // Distances are not in [0, 1]: their data range.
    expect(valueDomain([[0, 3.5], [2, 0]])).toEqual([0, 3.5]);
    expect(valueDomain([[-1, 0.5], [0.5, -1]], 'data')).toEqual([0.5, 1.5]);
  });

  it('keeps 47 family colours apart (no repeats after a dozen)', () => {
    const c = familyColours(47);
    expect(new Set(c).size).toBe(47);
    let min = Infinity;
    for (let i = 0; i < c.length; i++) for (let j = i + 1; j < c.length; j++) min = Math.min(min, deltaE(c[i], c[j]));
    expect(min).toBeGreaterThan(15); // CIE76: 12 categorical colours are ≥ 16 apart; the rest keep that
    expect(familyColours(5)).toEqual(familyColours(12).slice(0, 5));
  });

  it('bins scores 0.05 wide on [0, 1] and other values by Freedman–Diaconis, with a log axis option', () => {
    const scores = [0, 0.001, 0.002, 0.049, 0.05, 0.51, 1];
    const e = histogramEdges(scores);
    expect(e).toHaveLength(21);
    expect(e[1]).toBeCloseTo(0.05, 12);
    const counts = binCounts(scores, e);
    expect(counts[0]).toBe(4);
    expect(counts[1]).toBe(1);
    expect(counts[10]).toBe(1);
    expect(counts[19]).toBe(1); // 1.0 in the last, closed bin
    expect(counts.reduce((a, b) => a + b, 0)).toBe(scores.length);
    // 0, 1, …, 64: IQR 32, n = 65 → width 2·32·65^(−1/3) = 15.92 → ⌈64 / 15.92⌉ = 5 bins.
    const fd = histogramEdges(Array.from({ length: 65 }, (_, i) => 64 - i));
    expect(fd).toHaveLength(6);
    expect(fd[0]).toBe(0);
    expect(fd[5]).toBe(64);
    const log = valueHistogramSvg({ title: 't', xLabel: 'x', log: true, series: [{ name: 's', colour: '#000', values: [...Array(500).fill(0.01), 0.9] }] });
    expect(log).toContain('count (log)');
    expect((log.match(/class="bar"/g) ?? []).length).toBe(2);
  });
});

const WIDTHS = [1400, 800];

describe.skipIf(!HAS_CHROMIUM)('every dashboard in chromium at 1400 and 800 px', () => {
  let dir = '';
  let userDir = '';
  let context: import('playwright-core').BrowserContext | undefined;
  const pages: Record<string, string> = {};

  beforeAll(async () => {
    dir = tmpDir('modelprint-report-ux-');
    const run = (name: string, args: string[]) => {
      const out = path.join(dir, name);
      const r = runCli([...args, '-o', out]);
      expect(r.code, r.stderr).toBe(0);
      pages[name] = path.join(out, 'dashboard.html');
    };
    run('summary', ['analyze', 'summary', '--input', fx('summary.csv')]);
    run('roc', ['analyze', 'roc', '--same', fx('roc_same.csv'), '--diff', fx('roc_diff.csv'), '--log-histogram']);
    run('downloads', ['analyze', 'downloads', '--same', fx('downloads_same.csv'), '--diff', fx('downloads_diff.csv')]);
    run('families', ['analyze', 'families', '--matrix', fx('matrix.csv'), '--model-info', fx('model_info.json')]);
    const big = bigMatrix(152, 47);
    pages.big = writeMatrixDashboard(path.join(dir, 'big'), { ...big, title: 'modelprint demo: 152 models', label: 'cosine' }).html;
    pages.bigData = writeMatrixDashboard(path.join(dir, 'big-data'), { ...big, title: 'data range', label: 'cosine', display: { colourRange: 'data' } }).html;
    ({ context, userDir } = await launchChromium());
  }, 600_000);

  afterAll(async () => {
    await context?.close();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  for (const width of WIDTHS) {
    it(`lays out every page without overflow or errors at ${width} px`, async () => {
      for (const [name, file] of Object.entries(pages)) {
        const page = await context!.newPage();
        await page.setViewportSize({ width, height: 1000 });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        await page.goto(`file://${file}`);
        await page.waitForSelector('html[data-mp-ready="1"]');
        const { scroll, charts } = await page.evaluate(() => ({
          scroll: document.documentElement.scrollWidth,
          charts: [...document.querySelectorAll('.mp-card, .mp-heatmap, canvas')].map((e) => e.getBoundingClientRect().right),
        }));
        expect(scroll, `${name}: page wider than the window`).toBeLessThanOrEqual(width);
        for (const r of charts) expect(r, `${name}: a card sticks out (wide charts scroll inside their card)`).toBeLessThanOrEqual(width);
        // The title is not repeated as the subtitle.
        const header = await page.evaluate(() => ({ h1: document.querySelector('header h1')?.textContent, p: document.querySelector('header p')?.textContent ?? null }));
        expect(header.p, name).not.toBe(header.h1);
        expect(errors, name).toEqual([]);
        await page.close();
      }
    });
  }

  it('shows 152 models without a blank label band, 0–1 colour scale by default, a distinct colour per family', async () => {
    const page = await context!.newPage();
    await page.setViewportSize({ width: 1400, height: 1200 });
    await page.goto(`file://${pages.big}`);
    await page.waitForSelector('html[data-mp-ready="1"]');
    expect(await page.locator('header p').count()).toBe(0); // the demo title once
    const legend = await page.locator('.mp-hm-legend').first().textContent();
    expect(legend).toMatch(/^0\s*1\s/);
    // First painted (non-white) row and column of the canvas, in CSS px.
    const firstPainted = await page.evaluate(() => {
      const c = document.querySelector('canvas.mp-canvas') as HTMLCanvasElement;
      const ctx = c.getContext('2d')!;
      const dpr = c.width / c.getBoundingClientRect().width;
      const mid = Math.floor(c.width / 2);
      const col = ctx.getImageData(mid, 0, 1, c.height).data;
      let y = 0;
      while (y < c.height && col[y * 4] > 240 && col[y * 4 + 1] > 240 && col[y * 4 + 2] > 240) y++;
      const row = ctx.getImageData(0, Math.floor(c.height / 2), c.width, 1).data;
      let x = 0;
      while (x < c.width && row[x * 4] > 240 && row[x * 4 + 1] > 240 && row[x * 4 + 2] > 240) x++;
      return { y: y / dpr, x: x / dpr };
    });
    expect(firstPainted.y).toBeLessThan(45);
    expect(firstPainted.x).toBeLessThan(45);
    const colours = await page.evaluate(() => {
      const el = document.querySelector('[data-src]') as HTMLElement;
      const data = JSON.parse(document.getElementById(el.dataset.src!)!.textContent!) as { family_colours: string[]; domain: number[] };
      return data;
    });
    expect(colours.family_colours).toHaveLength(47);
    expect(new Set(colours.family_colours).size).toBe(47);
    expect(colours.domain).toEqual([0, 1]);
    await page.goto(`file://${pages.bigData}`);
    await page.waitForSelector('html[data-mp-ready="1"]');
    expect(await page.locator('.mp-hm-legend').first().textContent()).toMatch(/^0\.894/);
    await page.close();
  });

  it('draws real histograms (many bins) in the dashboards', () => {
    const svg = fs.readFileSync(path.join(path.dirname(pages.summary), 'score_histogram.svg'), 'utf8');
    expect(svg).toContain('bin width 0.05');
    const roc = fs.readFileSync(path.join(path.dirname(pages.roc), 'score_histogram.svg'), 'utf8');
    expect(roc).toContain('count (log)');
  });
});
