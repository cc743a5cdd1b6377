import { Args } from '@oclif/core';
import fs from 'node:fs';
import path from 'node:path';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { detectFormat } from '../../inference/format.js';
import { readCsvFile, requireColumns } from '../../util/csv.js';
import { contentHash } from '../../util/hash.js';
import type { ModelRecord } from '../../registry/types.js';

export default class ModelsImport extends BaseCommand<typeof ModelsImport> {
  static override summary = 'Register every model of a models CSV (model_id, path, family, model_type, base_model, downloads, likes).';
  static override description = 'Paths are relative to the CSV. Models already registered under the same name are left as they are.';
  static override examples = ['<%= config.bin %> models import ./zoo/models.csv', '<%= config.bin %> models import models.csv --registry postgres://admin@db/modelprint --json'];
  static override args = { csv: Args.string({ description: 'Models CSV.', required: true }) };

  static override flags = { ...registryFlag };

  async run(): Promise<{ added: ModelRecord[]; existing: string[] }> {
    const file = this.args.csv;
    if (!fs.existsSync(file)) throw new ModelprintError('E_NOT_FOUND', `models CSV ${file} does not exist`, { subject: file, hint: 'e.g. the models.csv written by `modelprint zoo create`' });
    const table = readCsvFile(file, 'models CSV');
    requireColumns(table, ['model_id', 'path'], 'columns: model_id, path, and optionally family, model_type, base_model, downloads, likes');
    const reg = await this.registry();
    const added: ModelRecord[] = [];
    const existing: string[] = [];
    for (const [i, r] of table.rows.entries()) {
      const rec = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.trim()]));
      const src = path.resolve(path.dirname(path.resolve(file)), rec.path);
      if (!rec.model_id) throw new ModelprintError('E_INPUT', `${file} line ${table.lines[i]}: empty model_id`, { subject: file, hint: 'every row needs a model_id' });
      if (await reg.getModel(rec.model_id)) {
        existing.push(rec.model_id);
        continue;
      }
      if (!fs.existsSync(src)) throw new ModelprintError('E_NOT_FOUND', `${file} line ${table.lines[i]}: path ${src} does not exist`, { subject: rec.model_id, hint: 'fix the path column (relative to the CSV)' });
      const num = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : null);
      // One upsert: another process importing the same CSV at the same moment is not an error.
      const { record, inserted } = await reg.registerModel({
        name: rec.model_id,
        source: src,
        contentHash: await contentHash(src),
        family: rec.family || null,
        modelType: rec.model_type || null,
        baseModel: rec.base_model || null,
        displayName: rec.display_name || null,
        downloads: num(rec.downloads),
        likes: num(rec.likes),
        format: detectFormat(src),
      });
      if (inserted) added.push(record);
      else existing.push(rec.model_id);
    }
    this.logger.info(`${added.length} models registered, ${existing.length} already there`);
    return { added, existing };
  }
}
