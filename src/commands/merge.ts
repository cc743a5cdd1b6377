import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { ModelprintError } from '../errors.js';
import { mergeCsvShards, type CsvMergeSummary } from '../hpc/csv-merge.js';
import { discoverShards, mergeSketchShards, type MergeSketchesSummary } from '../hpc/merge.js';

export default class Merge extends BaseCommand<typeof Merge> {
  static override summary = 'Merge the per-shard outputs of `sketch --shard i/n` (.mpsk) or `lineage --shard i/n` (.csv) of an HPC array.';
  static override description = `Checks that every shard 0 … n-1 is there exactly once (naming missing and duplicated shards and the files), that all were made from the same probe bank, k and model list, and that each shard is complete; then writes the collection in the order of the full model list (the file one process would have written) with its sidecar, atomically. Without file arguments the shards are found next to --output (<out stem>.shard-i-of-n.mpsk). With --output *.csv the shard CSVs of \`lineage --shard\` are merged the same way (their .shard.json sidecars list each shard's models): rows in the order of the full derived list.`;
  static override examples = [
    '<%= config.bin %> merge --output sketches.mpsk --shards 16',
    '<%= config.bin %> merge sketches.shard-0-of-2.mpsk sketches.shard-1-of-2.mpsk --output sketches.mpsk --json',
  ];
  static override strict = false;
  static override args = {
    files: Args.string({ description: 'Shard files (default: found next to --out).', required: false }),
  };
  static override flags = {
    output: Flags.string({ char: 'o', aliases: ['out'], deprecateAliases: true, description: 'Merged sketch collection (.mpsk) or lineage result CSV (.csv).', required: true }),
    shards: Flags.integer({ description: 'Expected number of shards (the array size).', min: 1 }),
    compact: Flags.boolean({ description: 'Sketches: write the merged collection as a compact index (.mpsk version 3).' }),
  };

  async run(): Promise<MergeSketchesSummary | CsvMergeSummary> {
    const { argv } = await this.parse({ flags: Merge.flags, baseFlags: BaseCommand.baseFlags, enableJsonFlag: true, args: Merge.args, strict: false });
    if (this.flags.output.toLowerCase().endsWith('.csv')) {
      const files = argv.length > 0 ? argv.map(String) : discoverShards(this.flags.output);
      if (files.length === 0) throw new ModelprintError('E_NOT_FOUND', `no shard CSVs given and none found next to ${this.flags.output}`, { subject: this.flags.output, hint: 'pass the CSVs written by `modelprint lineage --shard i/n`' });
      const c = mergeCsvShards(files, this.flags.output, this.flags.shards);
      this.out(`merged ${c.shards} shards: ${c.rows} rows (${c.failed} failed) → ${c.out}`);
      this.partial(c.failed);
      return c;
    }
    const s = mergeSketchShards(argv.map(String), this.flags.output, this.flags.shards, this.flags.compact);
    this.out(`merged ${s.shards} shards: ${s.models} models (${s.failed} failed) on ${s.prompts} probes → ${s.out}`);
    this.partial(s.failed);
    return s;
  }
}
