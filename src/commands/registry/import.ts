import { Args } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { importRegistry, TABLES, type ImportResult } from '../../registry/transfer.js';

export default class RegistryImport extends BaseCommand<typeof RegistryImport> {
  static override summary = 'Import a `registry export` file into the registry.';
  static override description =
    'The whole file is checked before anything is written. Rows already in the registry (models by name, probe sets and fingerprints by their keys, runs and errors by their content) are kept and reused, so importing the same file twice changes nothing and an interrupted import can be re-run. Ids are remapped for foreign keys. Into a shared PostgreSQL registry this needs the modelprint_admin role.';
  static override examples = [
    '<%= config.bin %> registry import registry.jsonl --registry postgres://me@db/modelprint',
    '<%= config.bin %> registry import shared.jsonl --registry ./local.db --json',
  ];
  static override args = {
    file: Args.string({ description: 'A file written by `modelprint registry export`.', required: true }),
  };

  static override flags = { ...registryFlag };

  async run(): Promise<ImportResult> {
    const r = await importRegistry(await this.registry(), this.args.file);
    const part = (t: (typeof TABLES)[number]) => `${t.replace('_', ' ')} ${r.inserted[t]} new / ${r.existing[t]} existing`;
    this.out(`imported ${r.file}: ${TABLES.map(part).join(', ')}`);
    return r;
  }
}
