import { Flags } from '@oclif/core';
import path from 'node:path';
import fs from 'node:fs';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError, messageOf } from '../../errors.js';
import { loadMatrix, loadModelInfo, type ModelInfo } from '../../analysis/input.js';
import { type NeighboursReport, SYMMETRISE, type Symmetrise, nearestNeighbours } from '../../analysis/neighbours.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { csvLine } from '../../util/csv.js';
import { renderTable } from '../../ui/table.js';
import { fmt } from '../../util/format.js';

type Result = NeighboursReport & { matrix: string; output?: { dir: string; files: string[] } };

export default class AnalyzeNeighbours extends BaseCommand<typeof AnalyzeNeighbours> {
  static override summary = 'Nearest relatives of every model in a similarity matrix.';
  static override description =
    'Reads any matrix `analyze families` reads (the CSV of `modelprint matrix`, `similarity`, or the experiment ' +
    "runner JSON with --method / --metric) and lists each model's --top nearest relatives. A pair's score is the " +
    'larger of M[i][j] and M[j][i] by default (--symmetrise mean | row for the others); failed models (-1) are ' +
    'left out. With --model-info (the families of `analyze families`, or a CSV with base_model links) each ' +
    'relative says whether it is of the same family. With --output-dir: neighbours.csv (model_id, rank, nearest, ' +
    'score, family, nearest_family, same_family — ready for `analyze roc --input neighbours.csv --label-column ' +
    'same_family`) and report.json.';
  static override examples = [
    '<%= config.bin %> analyze neighbours --matrix matrix/overlap_matrix.csv',
    '<%= config.bin %> analyze neighbours --matrix matrix/overlap_matrix.csv --model-info zoo/models.csv --top 3 -o neighbours/',
    '<%= config.bin %> analyze neighbours --matrix exp/similarity_matrices.json --method input_output --metric cosine --json',
  ];
  static override aliases = ['analyze:neighbors'];
  static override flags = {
    matrix: Flags.string({ char: 'm', description: 'Similarity matrix: CSV of `modelprint matrix` or runner JSON.', required: true }),
    'model-info': Flags.string({ description: 'Model info (JSON or CSV with model_id and family, or model_id and base_model).' }),
    method: Flags.string({ description: 'Method in a runner JSON (default: the first).' }),
    metric: Flags.string({ description: 'Metric in a runner JSON (default: the first of the method).' }),
    top: Flags.integer({ description: 'Relatives to list per model.', default: 1, min: 1 }),
    symmetrise: Flags.string({ description: 'Pair score from M[i][j] and M[j][i].', options: [...SYMMETRISE], default: 'max' }),
    'output-dir': Flags.string({ char: 'o', description: 'Write neighbours.csv and report.json here.' }),
  };

  async run(): Promise<Result> {
    const f = this.flags;
    const matrix = loadMatrix(f.matrix, { method: f.method, metric: f.metric });
    const info: ModelInfo[] | undefined = f['model-info'] ? loadModelInfo(f['model-info']) : undefined;
    const report = nearestNeighbours(matrix, info, { top: f.top, symmetrise: f.symmetrise as Symmetrise });
    if (report.skipped.length) this.logger.info(`${report.skipped.length} failed models left out: ${report.skipped.slice(0, 5).join(', ')}${report.skipped.length > 5 ? ', …' : ''}`);
    const withInfo = Boolean(info);
    this.out(
      renderTable(
        ['model', ...(withInfo ? ['family'] : []), 'rank', 'nearest relative', 'score', ...(withInfo ? ['same family'] : [])],
        report.rows.flatMap((r) =>
          r.neighbours.map((x, k) => [
            k === 0 ? r.model : '',
            ...(withInfo ? [k === 0 ? r.family ?? '-' : ''] : []),
            k + 1,
            x.model,
            fmt(x.score),
            ...(withInfo ? [x.same_family === null ? '-' : x.same_family ? 'yes' : 'NO'] : []),
          ]),
        ),
      ),
    );
    if (report.nearest_same_family_rate !== null) this.out(`nearest relative in the same family: ${(report.nearest_same_family_rate * 100).toFixed(1)} % of models`);
    const result: Result = { matrix: f.matrix, ...report };
    if (f['output-dir']) {
      const dir = path.resolve(f['output-dir']);
      try {
        fs.mkdirSync(dir, { recursive: true });
      } catch (e) {
        throw new ModelprintError('E_IO', `cannot create the output folder ${dir}: ${messageOf(e)}`, { subject: dir, hint: 'choose a writable --output-dir', cause: e });
      }
      const csvFile = path.join(dir, 'neighbours.csv');
      const lines = report.rows.flatMap((r) =>
        r.neighbours.map((x, k) => csvLine([r.model, k + 1, x.model, x.score.toFixed(6), r.family ?? '', x.family ?? '', x.same_family === null ? '' : String(x.same_family)])),
      );
      writeFileAtomic(csvFile, csvLine(['model_id', 'rank', 'nearest', 'score', 'family', 'nearest_family', 'same_family']) + lines.join(''));
      const jsonFile = path.join(dir, 'report.json');
      writeFileAtomic(jsonFile, `${JSON.stringify({ matrix: f.matrix, ...report }, null, 2)}\n`);
      result.output = { dir, files: [csvFile, jsonFile] };
      this.logger.info(`wrote ${csvFile}`);
    }
    return result;
  }
}
