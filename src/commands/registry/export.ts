import { Flags } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { exportRegistry, type ExportResult } from '../../registry/transfer.js';

export default class RegistryExport extends BaseCommand<typeof RegistryExport> {
  static override summary = 'Export every table of the registry as JSON lines.';
  static override description =
    'One JSON document a line: a header, then models, probe sets, fingerprints (payloads base64), runs and model errors, then an end marker with the row counts. The file is written atomically. Import it into any registry (SQLite or PostgreSQL) with `registry import`.';
  static override examples = [
    '<%= config.bin %> registry export --output registry.jsonl',
    '<%= config.bin %> registry export --registry postgres://me@db/modelprint --output shared.jsonl --json',
  ];
  static override flags = {
    ...registryFlag,
    output: Flags.string({ char: 'o', description: 'File to write (JSON lines).', required: true, aliases: ['out'], deprecateAliases: true }),
  };

  /** Only reads: a registry that does not exist is empty, and none is created. */
  static override registryAccess = 'read' as const;

  async run(): Promise<ExportResult> {
    const r = await exportRegistry(await this.registry(), this.flags.output);
    const c = r.counts;
    this.out(
      `exported ${c.models} models, ${c.probe_sets} probe sets, ${c.fingerprints} fingerprints, ${c.runs} runs, ${c.model_errors} errors to ${r.out}`,
    );
    return r;
  }
}
