/** Colours shared by the static SVGs and the dashboard. */

/** Viridis, 9 stops (perceptually uniform, colour-blind safe, prints in grey). */
export const VIRIDIS: [number, number, number][] = [
  [68, 1, 84],
  [71, 45, 123],
  [59, 82, 139],
  [44, 114, 142],
  [33, 145, 140],
  [40, 174, 128],
  [94, 201, 98],
  [173, 220, 48],
  [253, 231, 37],
];

/** Cells that are missing or belong to a failed model (-1). */
export const MISSING_RGB: [number, number, number] = [200, 200, 200];

export function viridis(t: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k]))) as [number, number, number];
}

export function rgbHex([r, g, b]: [number, number, number]): string {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** Okabe–Ito plus extras: distinguishable series / family colours. */
export const CATEGORICAL = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#F0E442',
  '#000000',
  '#8C564B',
  '#7F7F7F',
  '#17BECF',
  '#BCBD22',
];

export const SAME_COLOUR = '#0072B2';
export const DIFF_COLOUR = '#E69F00';

export function categorical(i: number): string {
  return CATEGORICAL[((i % CATEGORICAL.length) + CATEGORICAL.length) % CATEGORICAL.length];
}

/** HSL (degrees, 0–1, 0–1) to RGB. */
function hsl(h: number, s: number, l: number): [number, number, number] {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}

/** sRGB hex → CIE L*a*b* (D65). */
export function hexToLab(hex: string): [number, number, number] {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((v) => (v > 0.04045 ? ((v + 0.055) / 1.055) ** 2.4 : v / 12.92));
  const [x, y, z] = [
    (c[0] * 0.4124 + c[1] * 0.3576 + c[2] * 0.1805) / 0.95047,
    c[0] * 0.2126 + c[1] * 0.7152 + c[2] * 0.0722,
    (c[0] * 0.0193 + c[1] * 0.1192 + c[2] * 0.9505) / 1.08883,
  ].map((t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116));
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}

const labDistance = (p: number[], q: number[]) => Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);

/**
 * `count` family colours that stay distinguishable: the 12 categorical colours up to a
 * dozen; beyond, each further colour is the candidate (a grid of hues × saturations ×
 * lightnesses, white-ish and near-grey ones left out) farthest in CIELAB from every colour
 * already chosen — deterministic, never repeating. Tooltips and tables name the family
 * anyway; the colours only have to tell families apart.
 */
export function familyColours(count: number): string[] {
  if (count <= CATEGORICAL.length) return CATEGORICAL.slice(0, count);
  const chosen = [...CATEGORICAL];
  const labs = chosen.map(hexToLab);
  const cands: { hex: string; lab: [number, number, number]; d: number }[] = [];
  for (let h = 0; h < 360; h += 6) {
    for (const s of [0.45, 0.75, 1]) {
      for (const l of [0.22, 0.35, 0.5, 0.65, 0.8]) {
        const hex = rgbHex(hsl(h, s, l));
        const lab = hexToLab(hex);
        cands.push({ hex, lab, d: Math.min(...labs.map((x) => labDistance(x, lab))) });
      }
    }
  }
  while (chosen.length < count) {
    let best = 0;
    for (let i = 1; i < cands.length; i++) if (cands[i].d > cands[best].d) best = i;
    const pick = cands[best];
    chosen.push(pick.hex);
    for (const c of cands) c.d = Math.min(c.d, labDistance(c.lab, pick.lab));
  }
  return chosen;
}

/** The colour scale's range: the metric's (0–1, where the values fit) or the data's. */
export type ColourRange = 'metric' | 'data';
export const COLOUR_RANGES: readonly ColourRange[] = ['metric', 'data'];
