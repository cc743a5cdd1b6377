import fs from 'node:fs';
import path from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { runPipelineBenches } from '../bench/pipeline.js';

export default class Bench extends BaseCommand<typeof Bench> {
  static override summary = 'Run the benchmarks and write BENCHMARKS.md (what `npm run bench` runs).';
  static override hidden = false;
  static override examples = ['<%= config.bin %> bench', '<%= config.bin %> bench --only inference --only quality'];
  static override flags = {
    only: Flags.string({ description: 'Run only these sections.', options: ['inference', 'pipeline', 'quality', 'vector', 'similarity', 'lineage', 'safetensors', 'gguf', 'audit', 'hpc', 'hpc-scale'], multiple: true }),
    output: Flags.string({ char: 'o', description: 'Markdown file to update.', default: 'BENCHMARKS.md', aliases: ['file'], deprecateAliases: true }),
  };

  async run(): Promise<{ file: string; sections: string[] }> {
    const only = this.flags.only;
    const sections = only ?? ['inference', 'pipeline', 'quality', 'vector', 'similarity', 'lineage', 'safetensors', 'gguf', 'audit'];
    if (sections.some((x) => ['inference', 'pipeline', 'quality', 'vector'].includes(x))) await runPipelineBenches(this.flags.output, sections);
    if (sections.includes('lineage')) {
      const { runLineageBench } = await import('../bench/lineage.js');
      await runLineageBench(this.flags.output);
    }
    if (sections.includes('similarity')) {
      const { benchSimilarity } = await import('../bench/similarity.js');
      await benchSimilarity();
    }
    if (sections.includes('safetensors')) {
      const { benchSafetensors } = await import('../bench/safetensors.js');
      const { updateBenchSection } = await import('../bench/markdown.js');
      const work = path.resolve('.modelprint', 'bench');
      fs.mkdirSync(work, { recursive: true });
      const md = await benchSafetensors(work, (m) => this.logger.info(m));
      if (md) updateBenchSection(this.flags.output, 'safetensors', md);
    }
    if (sections.includes('gguf')) {
      const { benchGguf } = await import('../bench/gguf.js');
      const { updateBenchSection } = await import('../bench/markdown.js');
      const work = path.resolve('.modelprint', 'bench');
      fs.mkdirSync(work, { recursive: true });
      const md = await benchGguf(work, (m) => this.logger.info(m));
      if (md) updateBenchSection(this.flags.output, 'gguf', md);
    }
    if (sections.includes('audit')) {
      const { benchAudit } = await import('../bench/audit.js');
      await benchAudit(this.flags.output, (m) => this.logger.info(m));
    }
    if (sections.includes('hpc')) {
      // Not in the default list: tens of minutes (issue 13 scale and protocol benchmarks).
      const { runHpcBench } = await import('../bench/hpc.js');
      const { updateBenchSection } = await import('../bench/markdown.js');
      updateBenchSection(this.flags.output, 'hpc', await runHpcBench((m) => this.logger.info(m)));
    }
    if (sections.includes('hpc-scale')) {
      // Not in the default list: about half an hour (issue 13 item 7, n = 100,000 measured).
      const { runHpcScaleBench } = await import('../bench/hpc-scale.js');
      const { updateBenchSection } = await import('../bench/markdown.js');
      updateBenchSection(this.flags.output, 'hpc-scale', await runHpcScaleBench((m) => this.logger.info(m)));
    }
    this.logger.info(`updated ${this.flags.output}`);
    return { file: this.flags.output, sections };
  }
}
