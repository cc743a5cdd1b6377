import Table from 'cli-table3';
import { colourEnabled } from './colour.js';

export type Cell = string | number | boolean | null | undefined;

/** Renders rows as a cli-table3 table (no colour codes when colour is off). */
export function renderTable(head: string[], rows: Cell[][]): string {
  const colour = colourEnabled();
  const table = new Table({
    head,
    style: colour ? { head: ['cyan'], border: ['grey'] } : { head: [], border: [] },
  });
  for (const row of rows) table.push(row.map((v) => (v === null || v === undefined ? '' : String(v))));
  return table.toString();
}

