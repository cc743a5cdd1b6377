import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { type FamilyReport, type PairGroup, analyzeFamilies } from '../../analysis/families.js';
import { loadMatrix, loadModelInfo } from '../../analysis/input.js';
import { familiesDashboard, familyTextFiles, writeDashboard } from '../../report/index.js';
import { fmt, renderTable } from '../../ui/table.js';

type Result = FamilyReport & { output?: { dir: string; files: string[] } };

export default class AnalyzeFamilies extends BaseCommand<typeof AnalyzeFamilies> {
  static override summary = 'Intrafamily, interfamily and type-pair statistics of a similarity matrix.';
  static override description =
    'METHODS §4. Reads a matrix CSV written by `modelprint matrix` (model ids as header row and first column; -1 ' +
    'marks a failed model, whose pairs are left out) or the experiment runner JSON {"similarity_matrices": ' +
    '{method: {metric: {"matrix", "models"}}}} (--method / --metric choose; default the first), and model info ' +
    '(JSON array or {models: […]} of {model_id, family, model_type, display_name}, or a CSV with those columns such ' +
    "as the zoo's models.csv). Models without info are ignored. A pair's score is the mean of M[i][j] and M[j][i] " +
    '(equal for a symmetric matrix). Groups report min, max, mean, population variance and their pairs by score; ' +
    'groups are listed by mean, descending. With --output-dir: dashboard.html (canvas heatmap with zoom, pan and ' +
    'hover; box plots and quartile bars), SVG charts, report.json and the text reports intrafamily.txt, ' +
    'interfamily.txt, type_pairs.txt.';
  static override examples = [
    '<%= config.bin %> analyze families --matrix matrix.csv --model-info models.csv',
    '<%= config.bin %> analyze families --matrix results.json --method input_output --metric cosine --model-info info.json --json',
    '<%= config.bin %> analyze families --matrix matrix.csv --model-info models.csv --output-dir report/',
  ];
  static override flags = {
    matrix: Flags.string({ char: 'm', description: 'Similarity matrix: CSV of `modelprint matrix` or runner JSON.', required: true }),
    'model-info': Flags.string({ description: 'Model info: JSON or CSV with model_id, family, model_type, display_name.', required: true }),
    method: Flags.string({ description: 'Method in a runner JSON (default: the first).' }),
    metric: Flags.string({ description: 'Metric in a runner JSON (default: the first of the method).' }),
    'output-dir': Flags.string({ char: 'o', description: 'Write dashboard.html, SVG charts, report.json and text reports here.' }),
    order: Flags.string({
      description: 'Heatmap order in the dashboard and heatmap.svg: family (grouped by the given families) or clustered (average-linkage tree on 1 − score, for when the family is the unknown).',
      options: ['family', 'clustered'],
      default: 'family',
    }),
  };

  async run(): Promise<Result> {
    const f = this.flags;
    const matrix = loadMatrix(f.matrix, { method: f.method, metric: f.metric });
    const info = loadModelInfo(f['model-info']);
    const report = analyzeFamilies(matrix, info);
    if (report.models_with_info === 0) {
      throw new ModelprintError('E_INPUT', `none of the ${matrix.models.length} models in ${f.matrix} has an entry in ${f['model-info']}`, {
        subject: f['model-info'],
        hint: `model ids must match exactly, e.g. "${matrix.models[0] ?? ''}"`,
      });
    }
    if (report.ignored_models.length) this.logger.info(`${report.ignored_models.length} models without info ignored: ${report.ignored_models.slice(0, 5).join(', ')}${report.ignored_models.length > 5 ? ', …' : ''}`);
    if (report.failed_models.length) this.logger.info(`${report.failed_models.length} failed models (-1) left out: ${report.failed_models.slice(0, 5).join(', ')}`);
    if (matrix.source.method) this.logger.info(`method ${matrix.source.method}, metric ${matrix.source.metric}`);
    for (const [title, groups] of [
      ['intrafamily', report.intrafamily],
      ['interfamily', report.interfamily],
      ['type pairs', report.type_pairs],
    ] as [string, PairGroup[]][]) {
      this.out(`${title}:`);
      this.out(
        groups.length
          ? renderTable(
              ['group', 'pairs', 'mean', 'min', 'max', 'variance'],
              groups.map((g) => [g.label, g.count, fmt(g.mean, 6), fmt(g.min, 6), fmt(g.max, 6), fmt(g.variance, 6)]),
            )
          : '  (no pairs)',
      );
    }
    const result: Result = { ...report };
    if (f['output-dir']) {
      const label = matrix.source.metric ?? 'score';
      const w = writeDashboard(f['output-dir'], familiesDashboard(report, matrix, info, label, { order: f.order as 'family' | 'clustered' }), report, familyTextFiles(report));
      result.output = { dir: w.dir, files: w.files };
      this.logger.info(`wrote ${w.html}`);
    }
    return result;
  }
}
