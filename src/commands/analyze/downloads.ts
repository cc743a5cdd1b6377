import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { DEFAULT_SCORE_BINS, parseEdges } from '../../analysis/bins.js';
import { type DownloadsReport, type SideReport, analyzeDownloads } from '../../analysis/downloads.js';
import {
  DEFAULT_DOWNLOADS_COLUMN,
  KNOWN_MODEL_COLUMNS,
  KNOWN_SCORE_COLUMNS,
  type HubRecord,
  loadHubMetadata,
  loadScores,
} from '../../analysis/input.js';
import { downloadsDashboard, writeDashboard } from '../../report/index.js';
import { renderTable } from '../../ui/table.js';
import { fmt, pct } from '../../util/format.js';

type Result = Omit<DownloadsReport, 'same' | 'diff'> & {
  same?: SideReport;
  diff?: SideReport;
  output?: { dir: string; files: string[] };
};

export default class AnalyzeDownloads extends BaseCommand<typeof AnalyzeDownloads> {
  static override summary = 'Relate bottom-k overlap to download counts (same vs different family).';
  static override description =
    'METHODS §5. Download groups are right-closed intervals (lo, hi] from --bins plus an open last group, and a ' +
    'separate group "0" for rows with 0 or unknown downloads; per group count, mean, median, sample std (n−1; ' +
    'null for n < 2), min, max — what pandas cut + describe give. Low (≤ --low, zeros included) and high ' +
    '(> --high) summaries and the ratio of same/diff means; Pearson and Spearman correlation of downloads with ' +
    'overlap (p-values from @stdlib/stats-pcorrtest); Welch t test (@stdlib/stats-ttest2) and Mann–Whitney U ' +
    "(tie-corrected normal approximation with continuity correction, scipy's method='asymptotic') of same vs " +
    'different; filtering strategies, flags, confidence-weighted scores, findings and the overlap distribution. ' +
    'A "declared_derivative_low_overlap" finding (possibly a mislabelled base) is made only for --same rows, ' +
    'and only when the overlap is no higher than the 95th percentile of the --diff overlaps (without --diff: < 0.1); ' +
    'each finding states its evidence. ' +
    'Only rows with overlap ≥ 0 count. --hub-metadata fills in downloads from a hub metadata CSV ' +
    '(base_model, model_id, downloads, likes, …) on the model id when the input lacks them.';
  static override examples = [
    '<%= config.bin %> analyze downloads --same overlap_downloads_same.csv --diff overlap_downloads_diff.csv',
    '<%= config.bin %> analyze downloads --same base_vs_derived.csv --hub-metadata hub_derivatives.csv --json',
    '<%= config.bin %> analyze downloads --same s.csv --diff d.csv --output-dir report/',
  ];
  static override flags = {
    same: Flags.string({ description: 'Rows of same-family derivatives (CSV).' }),
    diff: Flags.string({ description: 'Rows of different-family models (CSV).' }),
    bins: Flags.string({ description: 'Download group edges, comma-separated; groups (lo, hi] plus (last, ∞).', default: '0,10,100,1000' }),
    'score-bins': Flags.string({ description: 'Overlap distribution bin edges.', default: DEFAULT_SCORE_BINS }),
    'downloads-column': Flags.string({ description: 'Column with the download counts.', default: DEFAULT_DOWNLOADS_COLUMN }),
    'score-column': Flags.string({ description: `Column with the overlap score. [default: the first of ${KNOWN_SCORE_COLUMNS.join(', ')}]` }),
    'model-column': Flags.string({ description: `Column with the model id. [default: the first of ${KNOWN_MODEL_COLUMNS.join(', ')}]` }),
    'hub-metadata': Flags.string({ description: 'Hub metadata CSV (model_id, downloads, …) to join downloads from.' }),
    low: Flags.integer({ description: 'Low downloads: ≤ this (zeros and unknown included); also the "balanced" filter.', default: 10, min: 0 }),
    high: Flags.integer({ description: 'High downloads: > this; also the "conservative" filter.', default: 100, min: 0 }),
    'log-histogram': Flags.boolean({ description: 'Dashboard histograms with a log count axis.' }),
    'output-dir': Flags.string({ char: 'o', description: 'Write dashboard.html, SVG charts and report.json here.' }),
  };

  async run(): Promise<Result> {
    const f = this.flags;
    if (!f.same && !f.diff) {
      throw new ModelprintError('E_USAGE', 'give --same and/or --diff', {
        hint: 'e.g. modelprint analyze downloads --same same.csv --diff diff.csv',
      });
    }
    const edges = parseEdges(f.bins, 'bins', { min: 0, minCount: 1 });
    const scoreEdges = parseEdges(f['score-bins'], 'score-bins');
    let hub: Map<string, HubRecord> | undefined;
    if (f['hub-metadata']) hub = loadHubMetadata(f['hub-metadata']);
    const load = (file: string) => ({
      file,
      rows: loadScores(file, {
        scoreColumn: f['score-column'],
        modelColumn: f['model-column'],
        downloadsColumn: f['downloads-column'],
        hub,
      }).rows,
    });
    const report = analyzeDownloads(
      { same: f.same ? load(f.same) : undefined, diff: f.diff ? load(f.diff) : undefined },
      { edges, low: f.low, high: f.high, scoreEdges },
    );
    this.print(report);
    const result: Result = { ...report };
    if (f['output-dir']) {
      const w = writeDashboard(f['output-dir'], downloadsDashboard(report, { logHistogram: f['log-histogram'] }), report);
      result.output = { dir: w.dir, files: w.files };
      this.logger.info(`wrote ${w.html}`);
    }
    return result;
  }

  private print(r: DownloadsReport): void {
    const sides = [
      ['same', r.same],
      ['diff', r.diff],
    ].filter((x): x is [string, SideReport] => !!x[1]);
    for (const [name, s] of sides) {
      if (s.unknown_downloads) this.logger.info(`${name}: ${s.unknown_downloads} valid rows have unknown downloads (counted in group 0)`);
    }
    this.out(
      renderTable(
        ['side', 'group', 'count', 'mean', 'median', 'std', 'min', 'max'],
        sides.flatMap(([name, s]) => s.groups.map((g) => [name, g.label, g.count, fmt(g.mean), fmt(g.median), fmt(g.std), fmt(g.min), fmt(g.max)])),
      ),
    );
    this.out(
      renderTable(
        ['side', 'rows', 'valid', 'invalid rate', `low (≤${r.options.low}) n`, 'low mean', `high (>${r.options.high}) n`, 'high mean', 'pearson r (p)', 'spearman ρ (p)'],
        sides.map(([name, s]) => [
          name,
          s.rows,
          s.valid,
          pct(s.invalid_rate),
          s.low.count,
          fmt(s.low.mean),
          s.high.count,
          fmt(s.high.mean),
          `${fmt(s.correlation.pearson.r)} (${pval(s.correlation.pearson.p)})`,
          `${fmt(s.correlation.spearman.rho)} (${pval(s.correlation.spearman.p)})`,
        ]),
      ),
    );
    if (r.low_ratio !== null) this.out(`low-download mean ratio same/diff: ${r.low_ratio.toFixed(1)}×`);
    if (r.tests) {
      const { welch, mann_whitney: mw } = r.tests;
      this.out(
        renderTable(
          ['test (same vs diff)', 'statistic', 'p'],
          [
            [`Welch t (df ${fmt(welch.df, 1)})`, fmt(welch.t), pval(welch.p)],
            ['Mann-Whitney U', mw.u === null ? '-' : String(mw.u), pval(mw.p)],
          ],
        ),
      );
    }
    this.out(
      renderTable(
        ['side', 'strategy', 'rule', 'kept', 'kept share', 'mean kept', 'confidence-weighted mean'],
        sides.flatMap(([name, s]) =>
          s.strategies.map((st) => [name, st.name, st.rule, st.kept, pct(st.kept_share), fmt(st.mean_kept), fmt(s.confidence_weighted.mean)]),
        ),
      ),
    );
    this.out(
      renderTable(
        ['side', ...(sides[0]?.[1].distribution.bins.map((b) => b.label) ?? [])],
        sides.map(([name, s]) => [name, ...s.distribution.bins.map((b) => `${b.count} (${pct(b.share)})`)]),
      ),
    );
    const anomalies = sides.flatMap(([name, s]) => s.anomalies.map((a) => [name, a.model, a.downloads, fmt(a.overlap), a.kind, a.evidence]));
    if (anomalies.length) {
      this.out('findings (each with its evidence):');
      this.out(renderTable(['side', 'model', 'downloads', 'overlap', 'kind', 'evidence'], anomalies));
    }
  }
}


function pval(p: number | null): string {
  if (p === null) return '-';
  return p < 1e-4 ? p.toExponential(2) : p.toFixed(4);
}
