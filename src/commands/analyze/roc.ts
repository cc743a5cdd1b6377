import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { KNOWN_MODEL_COLUMNS, KNOWN_SCORE_COLUMNS, loadScores, type ScoreRow } from '../../analysis/input.js';
import { type RocReport, roc } from '../../analysis/roc.js';
import { splitByLabel } from '../../analysis/labels.js';
import { rocDashboard, writeDashboard } from '../../report/index.js';
import { renderTable } from '../../ui/table.js';
import { fmt } from '../../util/format.js';

type Result = RocReport & {
  same_file: string;
  diff_file: string;
  score_column: string;
  label_column: string | null;
  same_rows: number;
  diff_rows: number;
  output?: { dir: string; files: string[] };
};

export default class AnalyzeRoc extends BaseCommand<typeof AnalyzeRoc> {
  static override summary = 'ROC analysis of same-family vs different-family scores.';
  static override description =
    'METHODS §6. A pair is predicted "same family" when its score ≥ threshold. AUC by the trapezoid rule over ' +
    "all thresholds (a same/different tie counts half); the best threshold maximises Youden's J (TPR − FPR; the " +
    'highest such threshold), with accuracy, precision, recall, specificity and F1 there; the highest threshold ' +
    'whose TPR reaches --target-tpr; and the full threshold table. Only rows with score ≥ 0 count. Scores are ' +
    'compared as stored (METHODS §6); --tie-decimals N rounds them first, so floating-point noise of averaging ' +
    '(0.005900000000000001 vs 0.0059) does not split a tie. The scores come from two files (--same, --diff) or ' +
    'from one (--input) whose --label-column says which rows are same-family (true/1/yes/same) and which are not ' +
    '(false/0/no/diff/different) — e.g. the same_family column of nearest_relatives.csv. The threshold table is ' +
    'printed with --thresholds (it is always in --json and report.json).';
  static override examples = [
    '<%= config.bin %> analyze roc --same overlap_same.csv --diff overlap_diff.csv',
    '<%= config.bin %> analyze roc --input nearest_relatives.csv --label-column same_family',
    '<%= config.bin %> analyze roc --same s.csv --diff d.csv --target-tpr 0.9 --json',
    '<%= config.bin %> analyze roc --same s.csv --diff d.csv --output-dir report/',
  ];
  static override flags = {
    same: Flags.string({ description: 'Scores of same-family pairs (CSV).', dependsOn: ['diff'], exclusive: ['input'] }),
    diff: Flags.string({ description: 'Scores of different-family pairs (CSV).', dependsOn: ['same'], exclusive: ['input'] }),
    input: Flags.string({ char: 'i', description: 'One CSV of all pairs; --label-column says which are same-family.', dependsOn: ['label-column'] }),
    'label-column': Flags.string({ description: 'With --input: the column marking same-family rows (true/1/yes/same vs false/0/no/diff).', dependsOn: ['input'] }),
    'score-column': Flags.string({ description: `Column with the score. [default: the first of ${KNOWN_SCORE_COLUMNS.join(', ')}]` }),
    'model-column': Flags.string({ description: `Column with the model id. [default: the first of ${KNOWN_MODEL_COLUMNS.join(', ')}]` }),
    thresholds: Flags.boolean({ description: 'Also print the full threshold table.' }),
    'target-tpr': Flags.string({ description: 'Target true positive rate (0–1).', default: '0.95' }),
    'tie-decimals': Flags.integer({ description: 'Round scores to this many decimals before comparing (default: compare as stored).', min: 0, max: 15 }),
    'log-histogram': Flags.boolean({ description: 'Dashboard histograms with a log count axis.' }),
    'output-dir': Flags.string({ char: 'o', description: 'Write dashboard.html, SVG charts and report.json here.' }),
  };

  async run(): Promise<Result> {
    const f = this.flags;
    const target = Number(f['target-tpr']);
    if (!(target > 0 && target <= 1)) {
      throw new ModelprintError('E_USAGE', `--target-tpr must be in (0, 1], got "${f['target-tpr']}"`, { subject: '--target-tpr', hint: 'e.g. --target-tpr 0.95' });
    }
    const opts = { scoreColumn: f['score-column'], modelColumn: f['model-column'] };
    let sameRows: ScoreRow[];
    let diffRows: ScoreRow[];
    let scoreColumn: string;
    let sameFile: string;
    let diffFile: string;
    if (f.input) {
      const loaded = loadScores(f.input, opts);
      const split = splitByLabel(loaded.rows, loaded.table.rows, f['label-column']!, f.input, loaded.table.lines);
      [sameRows, diffRows, scoreColumn] = [split.same, split.diff, loaded.score_column];
      sameFile = `${f.input} (${f['label-column']} true)`;
      diffFile = `${f.input} (${f['label-column']} false)`;
    } else if (f.same && f.diff) {
      const s = loadScores(f.same, opts);
      [sameRows, diffRows, scoreColumn] = [s.rows, loadScores(f.diff, opts).rows, s.score_column];
      [sameFile, diffFile] = [f.same, f.diff];
    } else {
      throw new ModelprintError('E_USAGE', 'give --same and --diff, or --input with --label-column', {
        hint: 'e.g. modelprint analyze roc --input nearest_relatives.csv --label-column same_family',
      });
    }
    if (!f['score-column']) this.logger.info(`score column: ${scoreColumn}`);
    const same = sameRows.filter((r) => r.valid).map((r) => r.score as number);
    const diff = diffRows.filter((r) => r.valid).map((r) => r.score as number);
    for (const [file, xs] of [
      [sameFile, same],
      [diffFile, diff],
    ] as const) {
      if (xs.length === 0) {
        throw new ModelprintError('E_INPUT', `${file}: no valid scores (every row is < 0 or empty)`, {
          subject: file,
          hint: 'ROC needs at least one valid score on each side',
        });
      }
    }
    const report = roc(same, diff, { targetTpr: target, digits: f['tie-decimals'] ?? null });
    const result: Result = {
      same_file: sameFile,
      diff_file: diffFile,
      score_column: scoreColumn,
      label_column: f['label-column'] ?? null,
      same_rows: sameRows.length,
      diff_rows: diffRows.length,
      ...report,
    };
    this.out(
      renderTable(
        ['AUC', 'same', 'diff', 'tied pairs', 'best threshold', 'J', 'accuracy', 'precision', 'recall', 'specificity', 'F1'],
        [[fmt(report.auc, 5), report.same_count, report.diff_count, report.tied_pairs, fmt(report.best_threshold, 6), fmt(report.youden_j), fmt(report.accuracy), fmt(report.precision), fmt(report.recall), fmt(report.specificity), fmt(report.f1)]],
      ),
    );
    this.out(
      `threshold reaching TPR ≥ ${target}: ${fmt(report.target_tpr_threshold, 6)} (TPR ${fmt(report.target.tpr)}, FPR ${fmt(report.target.fpr)}, precision ${fmt(report.target.precision)})`,
    );
    if (f.thresholds) {
      this.out(
        renderTable(
          ['threshold', 'TP', 'FP', 'TN', 'FN', 'TPR', 'FPR', 'precision', 'F1', 'J'],
          report.table.map((r) => [fmt(r.threshold, 6), r.tp, r.fp, r.tn, r.fn, fmt(r.tpr), fmt(r.fpr), fmt(r.precision), fmt(r.f1), fmt(r.youden_j)]),
        ),
      );
    }
    else this.logger.info(`${report.table.length} thresholds: print them with --thresholds (also in --json${f['output-dir'] ? ' and report.json' : ''})`);
    if (f['output-dir']) {
      const w = writeDashboard(f['output-dir'], rocDashboard(report, same, diff, { same: sameFile, diff: diffFile }, { logHistogram: f['log-histogram'] }), result);
      result.output = { dir: w.dir, files: w.files };
      this.logger.info(`wrote ${w.html}`);
    }
    return result;
  }
}

