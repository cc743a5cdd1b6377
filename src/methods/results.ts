/**
 * Base-vs-derived result files (METHODS §1.7): CSV compatible with the published
 * experiments, one row appended and flushed per model, resumable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError } from '../errors.js';
import { writeError, writeFileAtomic } from '../util/atomic.js';
import { csvLine, parseCsv, type CsvValue } from '../util/csv.js';

export { csvLine };

export const LINEAGE_COLUMNS = [
  'base_model_name',
  'derived_model_name',
  'num_pairs',
  'avg_overlap_ratio',
  'bottom_k_vocab_size',
  'pair_scores_json',
  'error_code',
  'error_message',
] as const;

export const TEXT_COLUMNS = [
  'base_model_name',
  'derived_model_name',
  'num_pairs',
  'avg_pal_k',
  'avg_lev_sim',
  'avg_lcs_ratio',
  'avg_score',
  'pair_metrics_json',
  'error_code',
  'error_message',
] as const;


/**
 * An append-only result CSV. Opening it cuts a trailing partial line (a run killed
 * mid-write) and reads the rows already done, so a re-run resumes.
 */
export class ResultCsv {
  readonly header: string[];
  readonly done = new Map<string, Record<string, string>>();

  constructor(
    readonly file: string,
    columns: readonly string[],
    readonly keyColumn: string,
  ) {
    this.header = [...columns];
    if (fs.existsSync(file)) {
      let text = fs.readFileSync(file, 'utf8');
      if (text.length > 0 && !text.endsWith('\n')) {
        text = text.slice(0, text.lastIndexOf('\n') + 1);
        writeFileAtomic(file, text);
      }
      if (text.trim() !== '') {
        const table = parseCsv(text, file);
        const head = table.header;
        const missing = columns.filter((c) => !head.includes(c));
        if (missing.length > 0) {
          throw new ModelprintError('E_INPUT', `${file} exists but is not a result file of this kind (missing columns ${missing.join(', ')})`, {
            subject: file,
            hint: 'pass another --out, or move the old file away',
          });
        }
        this.header = head;
        for (const rec of table.rows) this.done.set(rec[keyColumn], rec);
      }
    }
    if (!fs.existsSync(file) || fs.statSync(file).size === 0) {
      fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      writeFileAtomic(file, csvLine(this.header));
    }
  }

  /** Adds columns (metadata) to the header of a new, still empty file. */
  extendHeader(extra: string[]): void {
    const add = extra.filter((c) => !this.header.includes(c));
    if (add.length === 0) return;
    if (this.done.size > 0) return; // an existing file keeps its columns
    this.header.push(...add);
    writeFileAtomic(this.file, csvLine(this.header));
  }

  /** Whether a model already has a row (a failed one counts only without `retryFailed`). */
  isDone(id: string, scoreColumn: string, retryFailed = false): boolean {
    const row = this.done.get(id);
    return row !== undefined && !(retryFailed && Number(row[scoreColumn]) < 0);
  }

  /** Appends one row with a single write + fsync. */
  append(rec: Record<string, unknown>): void {
    const line = csvLine(this.header.map((h) => rec[h] as CsvValue));
    try {
      const fd = fs.openSync(this.file, 'a');
      try {
        fs.writeSync(fd, line);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (e) {
      // Disk full mid-row: the partial line is cut when the file is next opened (resume).
      throw writeError(this.file, e);
    }
    this.done.set(String(rec[this.keyColumn]), Object.fromEntries(this.header.map((h) => [h, String(rec[h] ?? '')])));
  }
}
