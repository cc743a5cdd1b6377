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

/**
 * `count` family colours that stay distinguishable: the 12 categorical colours up to a
 * dozen; beyond, hues spread by the golden angle over three lightness bands (so
 * neighbouring indices differ in hue and lightness), none repeated. Tooltips and tables name
 * the family anyway; the colours only have to tell neighbours apart.
 */
export function familyColours(count: number): string[] {
  if (count <= CATEGORICAL.length) return CATEGORICAL.slice(0, count);
  const out: string[] = [];
  const bands: [number, number][] = [
    [0.72, 0.42],
    [0.62, 0.62],
    [0.9, 0.3],
  ];
  for (let i = 0; i < count; i++) {
    const [s, l] = bands[i % bands.length];
    out.push(rgbHex(hsl((i * 137.508) % 360, s, l)));
  }
  return out;
}

/** The colour scale's range: the metric's (0–1, where the values fit) or the data's. */
export type ColourRange = 'metric' | 'data';
export const COLOUR_RANGES: readonly ColourRange[] = ['metric', 'data'];
