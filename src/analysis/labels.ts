import { ModelprintError } from '../errors.js';
import type { ScoreRow } from './input.js';

const TRUE = new Set(['1', 'true', 'yes', 'y', 't', 'same', 'same_family', 'positive']);
const FALSE = new Set(['0', 'false', 'no', 'n', 'f', 'diff', 'different', 'different_family', 'negative']);

/** Splits score rows on a yes/no label column; an unreadable label is an E_INPUT naming its line. */
export function splitByLabel(rows: ScoreRow[], raw: Record<string, string>[], column: string, file: string, lines: number[]): { same: ScoreRow[]; diff: ScoreRow[] } {
  if (raw.length && !(column in raw[0])) {
    throw new ModelprintError('E_INPUT', `${file}: no column "${column}"`, { subject: file, hint: `columns: ${Object.keys(raw[0]).join(', ')}` });
  }
  const same: ScoreRow[] = [];
  const diff: ScoreRow[] = [];
  rows.forEach((r, i) => {
    const v = (raw[i][column] ?? '').trim().toLowerCase();
    if (TRUE.has(v)) same.push(r);
    else if (FALSE.has(v)) diff.push(r);
    else {
      throw new ModelprintError('E_INPUT', `${file}: line ${lines[i]}, column "${column}": "${raw[i][column] ?? ''}" is neither true nor false`, {
        subject: `${file}:${column}`,
        hint: 'labels are true/1/yes/same or false/0/no/diff',
      });
    }
  });
  return { same, diff };
}
