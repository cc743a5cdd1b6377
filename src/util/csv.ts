import fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { ModelprintError, messageOf } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

/**
 * CSV reading and writing (RFC 4180: quoted fields may hold commas, doubled quotes and
 * newlines — `pair_scores_json` columns hold JSON arrays with commas). Built on the sync
 * APIs of csv-parse / csv-stringify.
 */
export interface CsvTable {
  /** Where the table came from (a path, or a label for in-memory text); used in errors. */
  source: string;
  header: string[];
  /** Data rows keyed by header name; every row has every column ('' when empty). */
  rows: Record<string, string>[];
  /** 1-based line number in the file of each data row (for error messages). */
  lines: number[];
}

/** Parses CSV text with a header row. Throws E_INPUT (naming `source`) when malformed. */
export function parseCsv(text: string, source = '<csv>'): CsvTable {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    throw new ModelprintError('E_INPUT', `${source}: not valid CSV: ${messageOf(err)}`, {
      subject: source,
      hint: 'check the quoting: a field holding commas, quotes or newlines must be enclosed in double quotes',
      cause: err,
    });
  }
  if (records.length === 0) {
    throw new ModelprintError('E_INPUT', `${source}: the file is empty (no header row)`, {
      subject: source,
      hint: 'the first line must name the columns',
    });
  }
  const header = records[0].record.map((h) => unguardCell(h.trim()));
  const seen = new Set<string>();
  for (const h of header) {
    if (h !== '' && seen.has(h)) {
      throw new ModelprintError('E_INPUT', `${source}: column "${h}" appears twice in the header`, {
        subject: source,
        hint: 'give every column a distinct name',
      });
    }
    seen.add(h);
  }
  const rows: Record<string, string>[] = [];
  const lines: number[] = [];
  for (let r = 1; r < records.length; r++) {
    const { record, info } = records[r];
    // A trailing empty field (a stray comma) is tolerated; any other mismatch is an error.
    const extra = record.slice(header.length);
    if (record.length > header.length && extra.some((v) => v.trim() !== '')) {
      throw new ModelprintError(
        'E_INPUT',
        `${source}: line ${info.lines} has ${record.length} fields but the header has ${header.length}`,
        { subject: source, hint: 'quote fields that contain commas' },
      );
    }
    if (record.length < header.length) {
      throw new ModelprintError(
        'E_INPUT',
        `${source}: line ${info.lines} has ${record.length} fields but the header has ${header.length}`,
        { subject: source, hint: 'every row needs a value (possibly empty) for every column' },
      );
    }
    const row: Record<string, string> = {};
    header.forEach((h, i) => {
      row[h] = unguardCell(record[i] ?? '');
    });
    rows.push(row);
    lines.push(info.lines);
  }
  return { source, header, rows, lines };
}

/** Reads and parses a CSV file; a missing file is E_NOT_FOUND naming it. */
export function readCsvFile(file: string, what = 'CSV file'): CsvTable {
  return parseCsv(readTextFile(file, what), file);
}

/** Reads a text file; a missing or unreadable file is a ModelprintError naming it. */
export function readTextFile(file: string, what = 'file'): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ModelprintError('E_NOT_FOUND', `${what} not found: ${file}`, {
        subject: file,
        hint: 'check the path',
        cause: err,
      });
    }
    if (code === 'EISDIR') {
      throw new ModelprintError('E_INPUT', `${what} is a directory, not a file: ${file}`, { subject: file, cause: err });
    }
    throw new ModelprintError('E_IO', `cannot read ${what} ${file}: ${messageOf(err)}`, { subject: file, cause: err });
  }
}

/** Throws E_INPUT naming the file and the first missing column. */
export function requireColumns(table: CsvTable, columns: string[], hint?: string): void {
  for (const col of columns) {
    if (!table.header.includes(col)) {
      throw new ModelprintError(
        'E_INPUT',
        `${table.source}: missing column "${col}" (columns present: ${table.header.filter((h) => h).join(', ') || 'none'})`,
        { subject: `${table.source}:${col}`, hint: hint ?? `add a "${col}" column` },
      );
    }
  }
}

export type CsvValue = string | number | boolean | null | undefined;

const FORMULA_START = /^'*[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * CSV injection (OWASP): a cell that starts with `=`, `+`, `-`, `@`, tab or CR is run as a
 * formula by spreadsheet programs, so a model id like `=HYPERLINK(…)` must not be written
 * as is. Such a cell (and, to keep the mapping reversible, one that starts with `'`s followed
 * by such a character) gets one leading `'`; plain numbers (`-1.0`) are left alone. Every CSV
 * modelprint writes goes through this (stringifyCsv, csvLine; the Rust matrix writer has the
 * same rule), and parseCsv strips the `'` again, so ids read back (resume, analyses) match.
 */
export function needsFormulaGuard(s: string): boolean {
  return FORMULA_START.test(s) && !PLAIN_NUMBER.test(s);
}

/** The cell as written: `'` prepended when a spreadsheet would take it for a formula. */
export function guardCell(v: CsvValue): CsvValue {
  return typeof v === 'string' && needsFormulaGuard(v) ? `'${v}` : v;
}

/** The inverse of guardCell, applied to every cell parseCsv reads. */
export function unguardCell(s: string): string {
  return s.startsWith("'") && needsFormulaGuard(s.slice(1)) ? s.slice(1) : s;
}

const cell = (v: CsvValue) => (v === null || v === undefined ? '' : guardCell(v));

/** Formats rows as CSV text with a header row; fields are quoted when they need it. */
export function stringifyCsv(header: string[], rows: CsvValue[][]): string {
  return stringify([header.map(cell), ...rows.map((r) => r.map(cell))], {
    cast: { boolean: (v) => (v ? 'true' : 'false') },
  });
}

/** Writes rows as a CSV file, atomically. */
export function writeCsvFile(file: string, header: string[], rows: CsvValue[][]): void {
  writeFileAtomic(file, stringifyCsv(header, rows));
}

/** One CSV line (with its newline), quoted as stringifyCsv quotes. */
export function csvLine(values: CsvValue[]): string {
  return stringify([values.map(cell)], {
    cast: { boolean: (v) => (v ? 'true' : 'false') },
  });
}
