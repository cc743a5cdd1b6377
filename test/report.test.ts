import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from './helpers/chromium.js';
import { tmpDir } from './helpers/cli.js';
import { writeMatrixDashboard } from '../src/report/index.js';
import { boxPlotSvg, heatmapSvg } from '../src/report/svg.js';

const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAS_CHROMIUM) {
  console.warn(`report.test.ts: ${CHROMIUM} not found — browser checks skipped (install with: apt-get install -y chromium)`);
}

/** A 40-model matrix: 5 families of 8, asymmetric, one failed model (-1), one model without info. */
function fixture() {
  const n = 40;
  const types = ['Base', 'Chat', 'Quantized', 'Merge'];
  const models = Array.from({ length: n }, (_, i) => `fam${i % 5}/model-${String(i).padStart(2, '0')}`);
  const info = models
    .map((m, i) => ({ model_id: m, family: `F${i % 5}`, model_type: types[Math.floor(i / 5) % 4], display_name: `m${i}` }))
    .filter((_, i) => i !== 39);
  const matrix = models.map((_, i) =>
    models.map((__, j) => {
      if (i === 7 || j === 7) return -1;
      if (i === j) return 1;
      const same = i % 5 === j % 5;
      return Number(((same ? 0.3 : 0.002) + ((i * 37 + j * 11) % 97) / (same ? 200 : 10000)).toFixed(6));
    }),
  );
  return { models, matrix, info };
}

describe('static charts', () => {
  it('writes standalone SVG documents', () => {
    const svg = boxPlotSvg({ title: 'x & y', yLabel: 'score', groups: [{ label: 'a<b', values: [0.1, 0.2, 0.9, 0.4] }] });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toContain('x &amp; y');
    expect(svg).toContain('a&lt;b');
    expect(svg.endsWith('</svg>')).toBe(true);
    // Large matrices become a pixel-per-cell PNG inside the SVG.
    const n = 150;
    const big = heatmapSvg({ title: 'big', models: Array.from({ length: n }, (_, i) => `m${i}`), values: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (__, j) => (i === j ? 1 : 0.01))) });
    expect(big).toContain('data:image/png;base64,iVBORw0KGgo');
  });
});

describe('dashboard in headless chromium', () => {
  let dir = '';
  let userDir = '';
  // playwright-core types are loaded lazily so the suite still loads without a browser.
  let context: import('playwright-core').BrowserContext | undefined;

  beforeAll(async () => {
    dir = tmpDir('modelprint-report-');
    if (!HAS_CHROMIUM) return;
    ({ context, userDir } = await launchChromium({ width: 1280, height: 1800 }));
  });

  afterAll(async () => {
    await context?.close();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it.skipIf(!HAS_CHROMIUM)('renders a 40-model heatmap with hover tooltips and no console errors (needs /usr/bin/chromium)', async () => {
    const { models, matrix, info } = fixture();
    const written = writeMatrixDashboard(dir, { models, matrix, info, title: 'test matrix' });
    expect(path.basename(written.html)).toBe('dashboard.html');
    for (const f of ['heatmap.svg', 'report.json', 'intrafamily.txt', 'intrafamily_box.svg', 'type_pairs_quartiles.svg']) {
      expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
    }
    const html = fs.readFileSync(written.html, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);

    const page = await context!.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    // Nothing may be fetched from the network: the page is self-contained.
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:') && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) requests.push(r.url());
    });
    await page.goto(`file://${written.html}`);
    await page.waitForSelector('html[data-mp-ready="1"]');

    const canvas = page.locator('canvas.mp-canvas');
    expect(await canvas.getAttribute('data-n')).toBe('40');
    expect(await canvas.getAttribute('data-cells')).toBe(String(40 * 40));

    // Hover a real cell with the mouse: the tooltip shows the exact value and both models.
    const hover = async (i: number, j: number) => {
      const c = await page.evaluate(([a, b]) => (globalThis as unknown as { modelprint: { heatmaps: { cellCenter(i: number, j: number): { x: number; y: number } }[] } }).modelprint.heatmaps[0].cellCenter(a, b), [i, j]);
      await page.mouse.move(c.x, c.y);
      return (await page.locator('#mp-tip').textContent()) ?? '';
    };
    let tip = await hover(3, 18);
    expect(tip).toContain(`value ${matrix[3][18].toFixed(6)}`);
    expect(tip).toContain(`row: ${models[3]}  [family F3, type Base]`);
    expect(tip).toContain(`col: ${models[18]}  [family F3, type Merge]`);
    expect(await page.locator('#mp-tip').isVisible()).toBe(true);
    tip = await hover(7, 2);
    expect(tip).toContain('failed (-1)');
    tip = await hover(39, 0);
    expect(tip).toContain(`row: ${models[39]}\n`);

    // Zoom with the wheel and reorder by family, then hover again.
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -400);
    await page.selectOption('[data-ctl="order"]', 'family');
    tip = await hover(22, 27);
    expect(tip).toContain(`value ${matrix[22][27].toFixed(6)}`);

    // SVG charts get the same tooltips.
    const boxEl = page.locator('[data-chart="intrafamily_box"] g.box').first();
    await boxEl.hover();
    expect(await page.locator('#mp-tip').textContent()).toMatch(/n = \d+\nmean /);

    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });
});
