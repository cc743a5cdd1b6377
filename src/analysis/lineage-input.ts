import { z } from 'zod';
import { ModelprintError } from '../errors.js';
import { readCsvFile, requireColumns } from '../util/csv.js';
import { type LineageMetadata, parseBases } from './lineage.js';

/**
 * Hub metadata for `analyze lineage`: a CSV with `model_id` (or `model`) and any of
 * `base_model` (declared bases, `;`- or `,`-separated, NONE for none), `downloads`,
 * `created_at` / `createdAt` (ISO date). The hub metadata CSVs of `analyze downloads`,
 * the zoo's models.csv and lineage_dev_relationships.csv all work as they are.
 */
export function loadLineageMetadata(file: string): Map<string, LineageMetadata> {
  const table = readCsvFile(file, 'hub metadata CSV');
  const idColumn = table.header.includes('model_id') ? 'model_id' : 'model';
  requireColumns(table, [idColumn], 'hub metadata needs a model_id column, and any of base_model, downloads, created_at');
  const createdColumn = ['created_at', 'createdAt', 'created'].find((c) => table.header.includes(c));
  const count = z
    .string()
    .trim()
    .transform((s, ctx) => {
      if (s === '' || /^(nan|null|none|na)$/i.test(s)) return null;
      const v = Number(s);
      if (!Number.isFinite(v) || v < 0) {
        ctx.addIssue({ code: 'custom', message: `not a download count: "${s}"`, input: s });
        return z.NEVER;
      }
      return v;
    });
  const date = z
    .string()
    .trim()
    .transform((s, ctx) => {
      if (s === '' || /^(nan|null|none|na)$/i.test(s)) return null;
      const t = Date.parse(s);
      if (!Number.isFinite(t)) {
        ctx.addIssue({ code: 'custom', message: `not a date: "${s}"`, input: s });
        return z.NEVER;
      }
      return t;
    });
  const out = new Map<string, LineageMetadata>();
  table.rows.forEach((raw, i) => {
    const id = (raw[idColumn] ?? '').trim();
    if (!id) {
      throw new ModelprintError('E_INPUT', `${table.source}: line ${table.lines[i]}: empty ${idColumn}`, {
        subject: `${table.source}:${idColumn}`,
        hint: 'every row needs a model id',
      });
    }
    const field = <T>(column: string | undefined, schema: z.ZodType<T | null, string>): T | null => {
      if (!column || raw[column] === undefined) return null;
      const r = schema.safeParse(raw[column]);
      if (!r.success) {
        throw new ModelprintError('E_INPUT', `${table.source}: line ${table.lines[i]}, column "${column}": ${r.error.issues[0].message}`, {
          subject: `${table.source}:${column}`,
          hint: 'fix the value in the hub metadata file',
        });
      }
      return r.data;
    };
    out.set(id, {
      model: id,
      baseModels: parseBases(raw.base_model),
      downloads: field('downloads' in raw ? 'downloads' : undefined, count),
      createdAt: field(createdColumn, date),
    });
  });
  return out;
}
