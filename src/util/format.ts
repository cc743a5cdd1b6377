/**
 * The project's one number formatter. Every number that reaches a CSV, a table, a report
 * or a JSON score goes through here, so the published-file conventions live in one place:
 * Python-style floats (`1.0`, rounded to 4 or 6 decimals) in result CSVs, fixed decimals
 * in tables, short labels in charts.
 */

/** `x` rounded to `digits` decimals (by its exact decimal expansion, as toFixed does). */
export function roundTo(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

/** A float as Python prints it after round(x, digits): 1.0, 0.25, 0.318. */
export function pyFloat(x: number, digits: number): string {
  const s = String(roundTo(x, digits));
  return /[.eE]/.test(s) || !Number.isFinite(x) ? s : `${s}.0`;
}

/** A result-CSV score: Python float at `digits` decimals; any negative (failed) is -1.0. */
export const formatScore = (x: number, digits = 6): string => (x < 0 ? '-1.0' : pyFloat(x, digits));

/** Python-style list repr with 4 decimals, as the published files have: "[0.236, 0.2485]". */
export function scoresJson(scores: number[], digits = 4): string {
  return `[${scores.map((s) => pyFloat(s, digits)).join(', ')}]`;
}

/** Fixed decimals for tables and text; `-` when missing. */
export function fmt(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  return x.toFixed(digits);
}

/** A share as a percentage with one decimal (0.123 → "12.3%"); `-` when missing. */
export function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`;
}

/** Number for labels and tooltips: up to `digits` decimals, no trailing zeros. */
export function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 1e5) return x.toExponential(2);
  if (Number.isInteger(x)) return String(x);
  const s = x.toFixed(digits);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}
