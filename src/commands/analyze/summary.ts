import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { DEFAULT_SCORE_BINS, parseEdges } from '../../analysis/bins.js';
import { KNOWN_MODEL_COLUMNS, KNOWN_SCORE_COLUMNS, loadScores } from '../../analysis/input.js';
import { type SummaryReport, summarize } from '../../analysis/summary.js';
import { summaryDashboard, writeDashboard } from '../../report/index.js';
import { renderTable } from '../../ui/table.js';
import { fmt, pct } from '../../util/format.js';

export default class AnalyzeSummary extends BaseCommand<typeof AnalyzeSummary> {
  static override summary = 'Summarise the scores of a base-vs-derived CSV.';
  static override description =
    'Rows, valid rows (score ≥ 0; -1 marks a model that could not be evaluated), invalid rate, failures by error code, mean, median, ' +
    'sample standard deviation (n−1), min, max, the distribution over score bins (the first bin includes its lower ' +
    'edge, every other is (lo, hi]) and the lowest and highest models. With --output-dir, also an interactive ' +
    'dashboard.html, static SVG charts and report.json. The score column is found by itself in every result CSV ' +
    `modelprint writes (${KNOWN_SCORE_COLUMNS.join(', ')}); --score-column names another.`;
  static override examples = [
    '<%= config.bin %> analyze summary --input base_vs_derived.csv',
    '<%= config.bin %> analyze summary --input results.csv --bins 0,0.05,0.2,1 --json',
    '<%= config.bin %> analyze summary --input results.csv --output-dir report/',
  ];
  static override flags = {
    input: Flags.string({ char: 'i', description: 'Base-vs-derived CSV.', required: true }),
    bins: Flags.string({ description: 'Score bin edges, comma-separated.', default: DEFAULT_SCORE_BINS }),
    'score-column': Flags.string({ description: `Column with the score. [default: the first of ${KNOWN_SCORE_COLUMNS.join(', ')}]` }),
    'model-column': Flags.string({ description: `Column with the model id. [default: the first of ${KNOWN_MODEL_COLUMNS.join(', ')}]` }),
    top: Flags.integer({ description: 'How many lowest / highest models to list.', default: 5, min: 0 }),
    'log-histogram': Flags.boolean({ description: 'Dashboard histograms with a log count axis.' }),
    'output-dir': Flags.string({ char: 'o', description: 'Write dashboard.html, SVG charts and report.json here.' }),
  };

  async run(): Promise<SummaryReport & { file: string; score_column: string; output?: { dir: string; files: string[] } }> {
    const f = this.flags;
    const edges = parseEdges(f.bins, 'bins');
    const { rows, score_column: scoreColumn } = loadScores(f.input, { scoreColumn: f['score-column'], modelColumn: f['model-column'] });
    if (!f['score-column']) this.logger.info(`score column: ${scoreColumn}`);
    const report = summarize(rows, edges, f.top);
    const result: SummaryReport & { file: string; score_column: string; output?: { dir: string; files: string[] } } = {
      file: f.input,
      score_column: scoreColumn,
      ...report,
    };
    this.out(
      renderTable(
        ['rows', 'valid', 'invalid', 'invalid rate', 'mean', 'median', 'std (n-1)', 'min', 'max'],
        [[report.rows, report.valid, report.invalid, pct(report.invalid_rate), fmt(report.mean), fmt(report.median), fmt(report.std), fmt(report.min), fmt(report.max)]],
      ),
    );
    this.out(renderTable(['bin', 'count', 'share'], report.distribution.bins.map((b) => [b.label, b.count, pct(b.share)])));
    if (report.distribution.out_of_range) this.logger.warn(`${report.distribution.out_of_range} valid scores lie outside the bins ${f.bins}`);
    if (report.failures.length) {
      this.out('failures by error code:');
      this.out(renderTable(['error code', 'rows', 'share of rows', 'models'], report.failures.map((g) => [g.code, g.count, pct(g.share), `${g.models.join(', ')}${g.count > g.models.length ? ', …' : ''}`])));
    }
    if (report.lowest.length) {
      this.out('lowest:');
      this.out(renderTable(['model', scoreColumn], report.lowest.map((m) => [m.model, fmt(m.score, 6)])));
      this.out('highest:');
      this.out(renderTable(['model', scoreColumn], report.highest.map((m) => [m.model, fmt(m.score, 6)])));
    }
    if (f['output-dir']) {
      const scores = rows.filter((r) => r.valid).map((r) => r.score as number);
      const w = writeDashboard(f['output-dir'], summaryDashboard(report, scores, f.input, { logHistogram: f['log-histogram'] }), { file: f.input, score_column: scoreColumn, ...report });
      result.output = { dir: w.dir, files: w.files };
      this.logger.info(`wrote ${w.html}`);
    }
    return result;
  }
}

