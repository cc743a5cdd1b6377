import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { createZoo, DEFAULT_SEED, ZOO_SIZES, type ZooModel, type ZooSize } from '../../zoo/index.js';
import { renderTable } from '../../ui/table.js';

export interface ZooCreateResult {
  dir: string;
  size: ZooSize;
  seed: number;
  reused: boolean;
  seconds: number;
  models: ZooModel[];
}

export default class ZooCreate extends BaseCommand<typeof ZooCreate> {
  static override summary = 'Build a zoo of small language models with known lineage.';
  static override description = [
    'Generates synthetic Llama-style causal LMs in the Hugging Face / Optimum ONNX layout (config.json, tokenizer files, ' +
      'onnx/model.onnx): four independent base families (two sharing one tokenizer and architecture, one with a tied LM ' +
      'head, one with its own Qwen-style vocabulary) and twelve derivatives of each base: light and heavy fine-tunes, a ' +
      'merged LoRA, int8 and int4 round-trips, magnitude pruning, a vocabulary extension, an exact re-upload, a merge of ' +
      'two derivatives and a three-step fine-tune chain. lineage.json and models.csv record who derives from whom.',
    'Everything is deterministic in --seed. An existing complete zoo of the same size and seed is reused unless --force; ' +
      'the zoo is built in a temporary folder next to DIR and renamed into place, so an interrupted build leaves no half zoo.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> zoo create ./zoo',
    '<%= config.bin %> zoo create ./zoo-tiny --size tiny --seed 7 --json',
    '<%= config.bin %> zoo create ./zoo --force',
  ];
  static override args = {
    dir: Args.string({ description: 'Directory to create the zoo in.', required: true }),
  };
  static override flags = {
    seed: Flags.integer({ description: 'Seed of every generated weight and tokenizer.', default: DEFAULT_SEED, min: 0 }),
    size: Flags.string({
      description: 'tiny: 4k–6k vocabularies, hidden 32 (for tests); default: 32k/48k vocabularies, hidden 64.',
      options: [...ZOO_SIZES],
      default: 'default',
    }),
    force: Flags.boolean({ description: 'Rebuild even if a complete zoo is already there.' }),
  };

  async run(): Promise<ZooCreateResult> {
    const size = this.flags.size as ZooSize;
    const r = await createZoo(this.args.dir, {
      size,
      seed: this.flags.seed,
      force: this.flags.force,
      log: (m) => (m.startsWith('  ') ? this.logger.debug(m.trim()) : this.logger.info(m)),
    });
    const result: ZooCreateResult = {
      dir: r.dir,
      size: r.size,
      seed: r.seed,
      reused: r.reused,
      seconds: Math.round(r.seconds * 100) / 100,
      models: r.models,
    };
    // One row per family (the derivatives are the same for every family).
    const families = [...new Set(r.models.map((m) => m.family))];
    const rows = families.map((f) => {
      const ms = r.models.filter((m) => m.family === f);
      const base = ms.find((m) => m.relation === 'base')!;
      return [f, base.id, base.tokenizer, base.vocab_size, base.tie_word_embeddings ? 'tied' : 'untied', ms.length - 1];
    });
    this.out(renderTable(['family', 'base', 'tokenizer', 'vocab', 'LM head', 'derivatives'], rows));
    const suffixes = r.models.filter((m) => m.family === families[0] && m.relation !== 'base').map((m) => m.id.slice(families[0].length + 1));
    this.out(`derivatives of each base: ${suffixes.join(', ')}`);
    this.out(`${r.models.length} models in ${r.dir}${r.reused ? ' (reused)' : ` (built in ${result.seconds} s)`}; lineage in lineage.json and models.csv`);
    return result;
  }
}
