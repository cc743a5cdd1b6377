import { Flags } from '@oclif/core';
import fs from 'node:fs';
import path from 'node:path';
import { BaseCommand } from '../cli/base.js';
import { ensureZoo } from '../zoo/index.js';
import { openRegistry } from '../registry/index.js';
import { resolveModelList } from '../methods/models-input.js';
import { runMatrix } from '../methods/matrix.js';
import { BottomKParamsSchema } from '../methods/params.js';
import { lineageQuality, labelsFromEntries } from '../methods/quality.js';
import { promptScores } from '../methods/bottomk.js';
import { LINEAGE_COLUMNS, csvLine, formatScore, scoresJson } from '../methods/results.js';
import type { ProgressMode } from '../ui/progress.js';
import { withRunContext } from '../cli/run-context.js';
import { writeFileAtomic } from '../util/atomic.js';
import { renderTable, fmt } from '../ui/table.js';
import { writeMatrixDashboard } from '../report/index.js';

export default class Demo extends BaseCommand<typeof Demo> {
  static override summary = 'The whole pipeline on the embedded zoo: build it, fingerprint every model, recover lineage.';
  static override description = `Creates the model zoo (if absent) under the output folder, runs the pairwise bottom-k matrix over all zoo models, prints a family table and each model's nearest relative, and writes CSV/JSON outputs and an HTML dashboard. No network, no GPU. This is what \`npm start\` runs.`;
  static override examples = ['<%= config.bin %> demo', '<%= config.bin %> demo --out-dir /tmp/demo --num-prompts 3 --json'];
  static override flags = {
    'out-dir': Flags.string({ description: 'Output folder (the zoo and the registry go inside too).', default: 'modelprint-demo' }),
    size: Flags.string({ description: 'Zoo size.', options: ['tiny', 'default'], default: 'default' }),
    seed: Flags.integer({ description: 'Zoo and prompt seed.', default: 42 }),
    'num-prompts': Flags.integer({ description: 'Probe prompts per model (3 keeps the demo under 3 minutes on 2 cores).', default: 3, min: 1 }),
    k: Flags.integer({ description: 'Bottom-k set size.', default: 2000, min: 1 }),
    progress: Flags.string({ options: ['auto', 'tty', 'jsonl', 'plain', 'none'], default: 'auto', description: 'Progress display.' }),
  };

  async run(): Promise<Record<string, unknown>> {
    const f = this.flags;
    const t0 = Date.now();
    const out = path.resolve(f['out-dir']);
    fs.mkdirSync(out, { recursive: true });
    const zooDir = path.join(out, 'zoo');
    this.logger.info(`zoo: ${zooDir} (${f.size}, seed ${f.seed})`);
    await ensureZoo(zooDir, { size: f.size as 'tiny' | 'default', seed: f.seed });
    const tZoo = (Date.now() - t0) / 1000;
    const registry = await openRegistry(this.flags.registry ?? path.join(out, 'registry.db'));
    const params = BottomKParamsSchema.parse({ k: f.k, numPrompts: f['num-prompts'], seed: f.seed });
    try {
      return await withRunContext({ params, open: { device: 'auto' }, registry, reuse: true, progress: f.progress as ProgressMode, quiet: Boolean(f.quiet) }, async (ctx) => {
        const models = await resolveModelList([path.join(zooDir, 'models.csv')], registry);
        const r = await runMatrix(ctx, models, out);
        ctx.progress.close();
        const labels = labelsFromEntries(models);
        const q = lineageQuality(r.models, r.matrix, labels);

        // Base-vs-derived rows for each family, straight from the matrix sketches.
        const idx = new Map(r.models.map((id, i) => [id, i]));
        const lineageFiles: string[] = [];
        for (const base of labels.filter((l) => l.base === l.id)) {
          const bi = idx.get(base.id)!;
          const n = r.models.length;
          let text = csvLine([...LINEAGE_COLUMNS]);
          for (const l of labels.filter((x) => x.family === base.family && x.id !== base.id)) {
            const di = idx.get(l.id)!;
            const score = r.matrix[bi * n + di];
            if (!r.status[bi].ok || !r.status[di].ok || score < 0) {
              text += csvLine([base.id, l.id, 0, '-1.0', f.k, '[]', r.status[di].code ?? 'inference_failed', r.status[di].message ?? '']);
              continue;
            }
            // The base's row of the matrix: over the base's own prompts (its anchor range).
            const per = promptScores(r.sketches, bi, r.sketches, di, 'overlap');
            text += csvLine([base.id, l.id, per.length, formatScore(score), f.k, scoresJson(per), '', '']);
          }
          const file = path.join(out, `lineage_${base.id}.csv`);
          writeFileAtomic(file, text);
          lineageFiles.push(file);
        }

        const nearestCsv = path.join(out, 'nearest_relatives.csv');
        writeFileAtomic(nearestCsv, csvLine(['model_id', 'family', 'relation', 'nearest', 'score', 'same_family']) + q.nearest.map((x) => csvLine([x.model, x.family, x.relation, x.nearest, x.score.toFixed(6), x.same_family])).join(''));
        const info = models.map((m) => ({ model_id: m.id, family: m.meta.family ?? '', model_type: m.meta.model_type ?? '', display_name: m.id }));
        let dashboard: string | null = null;
        try {
          const n = r.models.length;
          const rows = Array.from({ length: n }, (_, i) => Array.from(r.matrix.subarray(i * n, (i + 1) * n)));
          dashboard = writeMatrixDashboard(path.join(out, 'report'), { models: r.models, matrix: rows, info, title: 'modelprint demo: bottom-k overlap of the zoo', label: 'overlap' }).html;
        } catch (e) {
          this.logger.warn(`dashboard not written: ${(e as Error).message}`);
        }
        const summaryFile = path.join(out, 'demo_summary.json');
        const seconds = (Date.now() - t0) / 1000;
        const summary = { out_dir: out, zoo: zooDir, models: r.models.length, failed: r.failed, seconds, zoo_seconds: tZoo, matrix_seconds: r.seconds, params, quality: q, files: { ...r.files, lineage: lineageFiles, nearest: nearestCsv, dashboard, summary: summaryFile } };
        writeFileAtomic(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);

        this.out(renderTable(['relation', 'n', 'mean overlap with base', 'min', 'max'], q.relations.map((x) => [x.relation, x.count, fmt(x.mean), fmt(x.min), fmt(x.max)])));
        this.out(renderTable(['model', 'family', 'relation', 'nearest relative', 'score', 'same family'], q.nearest.map((x) => [x.model, x.family, x.relation, x.nearest, fmt(x.score), x.same_family ? 'yes' : 'NO'])));
        this.out(
          `ROC AUC derivatives vs unrelated: ${fmt(q.auc_without_hard)} without ${q.hard_relations.join('/')}, ${fmt(q.auc_all)} with them; nearest relative in the same family for ${(q.nearest_same_family_rate * 100).toFixed(1)} % of models.`,
        );
        this.out(`outputs in ${out} (matrix, lineage_*.csv, nearest_relatives.csv, demo_summary.json${dashboard ? ', report/dashboard.html' : ''}); ${seconds.toFixed(1)} s`);
        this.partial(r.failed);
        return summary;
      });
    } finally {
      await registry.close();
    }
  }
}
