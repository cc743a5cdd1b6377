import { withOutputLocks } from '../../util/lock.js';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { PART_EXT, mergeShards, type MergeSummary } from '../../similarity/index.js';

export default class SimilarityMerge extends BaseCommand<typeof SimilarityMerge> {
  static override summary = 'Merge the shard parts of `modelprint similarity --shard i/n` into the full matrix.';
  static override description = `Every shard 0 … n-1 must be given exactly once, all computed from the same sketches with the same metric; a missing or foreign part is an error naming it. The matrix is written atomically as CSV (six decimals) or NPY (float32).`;
  static override examples = [`<%= config.bin %> similarity merge part-0${PART_EXT} part-1${PART_EXT} part-2${PART_EXT} part-3${PART_EXT} --output matrix.csv`];
  static override strict = false;
  static override args = {
    parts: Args.string({ description: `Part files (*${PART_EXT}).`, required: true }),
  };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'Output: matrix.csv or matrix.npy.', required: true, aliases: ['out'], deprecateAliases: true }),
  };

  async run(): Promise<MergeSummary> {
    // Every positional argument is a part (strict = false lets oclif accept many).
    const { argv } = await this.parse({
      flags: SimilarityMerge.flags,
      baseFlags: BaseCommand.baseFlags,
      enableJsonFlag: true,
      args: SimilarityMerge.args,
      strict: false,
    });
    const parts = argv.map(String);
    const s = await withOutputLocks([{ path: this.flags.output, kind: 'file', flag: '--output' }], () => mergeShards(parts, this.flags.output));
    this.out(`merged ${s.parts} parts into a ${s.n} × ${s.n} ${s.metric} matrix → ${s.out}`);
    return s;
  }
}
