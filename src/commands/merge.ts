import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { mergeSketchShards, type MergeSketchesSummary } from '../hpc/merge.js';

export default class Merge extends BaseCommand<typeof Merge> {
  static override summary = 'Merge the per-shard outputs of `sketch --shard i/n` (an HPC array) into one collection.';
  static override description = `Checks that every shard 0 … n-1 is there exactly once (naming missing and duplicated shards and the files), that all were made from the same probe bank, k and model list, and that each shard is complete; then writes the collection in the order of the full model list (the file one process would have written) with its sidecar, atomically. Without file arguments the shards are found next to --out (<out stem>.shard-i-of-n.mpsk).`;
  static override examples = [
    '<%= config.bin %> merge --out sketches.mpsk --shards 16',
    '<%= config.bin %> merge sketches.shard-0-of-2.mpsk sketches.shard-1-of-2.mpsk --out sketches.mpsk --json',
  ];
  static override strict = false;
  static override args = {
    files: Args.string({ description: 'Shard files (default: found next to --out).', required: false }),
  };
  static override flags = {
    out: Flags.string({ description: 'Merged sketch collection (.mpsk).', required: true }),
    shards: Flags.integer({ description: 'Expected number of shards (the array size).', min: 1 }),
  };

  async run(): Promise<MergeSketchesSummary> {
    const { argv } = await this.parse({ flags: Merge.flags, baseFlags: BaseCommand.baseFlags, enableJsonFlag: true, args: Merge.args, strict: false });
    const s = mergeSketchShards(argv.map(String), this.flags.out, this.flags.shards);
    this.out(`merged ${s.shards} shards: ${s.models} models (${s.failed} failed) on ${s.prompts} probes → ${s.out}`);
    this.partial(s.failed);
    return s;
  }
}
