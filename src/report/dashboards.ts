import type { DownloadsReport, SideReport } from '../analysis/downloads.js';
import { type FamilyReport, type PairGroup, topPairs } from '../analysis/families.js';
import type { ModelInfo, SimilarityMatrix } from '../analysis/input.js';
import { type LineageReport, clusteredOrder } from '../analysis/lineage.js';
import type { RocReport } from '../analysis/roc.js';
import type { SummaryReport } from '../analysis/summary.js';
import { DIFF_COLOUR, SAME_COLOUR, categorical } from './colour.js';
import type { DashboardSpec, HeatmapData, Item, Section } from './html.js';
import { boxPlotSvg, cdfSvg, dendrogramSvg, forestSvg, histogramSvg, quartileBarsSvg, rocSvg, scatterLogSvg, valueHistogramSvg } from './svg.js';
import { num, pct } from '../util/format.js';
import type { ColourRange } from './colour.js';

/** Dashboard specs for each analysis (rendered by renderDashboard, written by writeDashboard). */

/** Display options shared by the dashboards. */
export interface DashboardOptions {
  /** Histograms with a log10 count axis. */
  logHistogram?: boolean;
  /** Heatmap colour scale: the metric's range (0–1, default) or the data's. */
  colourRange?: ColourRange;
}
const f4 = (x: number | null | undefined) => num(x, 4);
const f6 = (x: number | null | undefined) => num(x, 6);

/** A chart item whose SVG is drawn under the item's own id. */
const chart = (id: string, draw: (id: string) => string): Item => ({ kind: 'chart', id, svg: draw(id) });

export function summaryDashboard(report: SummaryReport, scores: number[], file: string, opts: DashboardOptions = {}): DashboardSpec {
  const d = report.distribution;
  return {
    title: 'Score summary',
    subtitle: file,
    sections: [
      {
        title: 'Overview',
        note: 'Only rows with score ≥ 0 count (-1 marks a model that could not be evaluated). std is the sample standard deviation (n−1).',
        items: [
          {
            kind: 'stats',
            entries: [
              ['rows', String(report.rows)],
              ['valid (score ≥ 0)', String(report.valid)],
              ['invalid', `${report.invalid} (${pct(report.invalid_rate)})`],
              ['mean', f4(report.mean)],
              ['median', f4(report.median)],
              ['std (n−1)', f4(report.std)],
              ['min', f4(report.min)],
              ['max', f4(report.max)],
            ],
          },
        ],
      },
      {
        title: 'Distribution',
        items: [
          {
            kind: 'chart',
            id: 'score_histogram',
            svg: valueHistogramSvg({
              id: 'score_histogram',
              title: 'Score histogram',
              xLabel: 'score',
              log: opts.logHistogram,
              series: [{ name: 'models', colour: SAME_COLOUR, values: scores }],
            }),
          },
          { kind: 'chart', id: 'score_cdf', svg: cdfSvg({ id: 'score_cdf', title: 'Cumulative distribution', xLabel: 'score', series: [{ name: 'models', colour: SAME_COLOUR, values: scores }] }) },
          { kind: 'chart', id: 'score_box', svg: boxPlotSvg({ id: 'score_box', title: 'Box plot', yLabel: 'score', groups: [{ label: 'all valid', values: scores, colour: SAME_COLOUR }] }) },
          {
            kind: 'table',
            head: ['bin', 'count', 'share'],
            rows: d.bins.map((b) => [b.label, b.count, pct(b.share)]),
          },
        ],
      },
      {
        title: 'Models',
        items: [
          { kind: 'table', caption: 'lowest', head: ['model', 'score', 'line'], rows: report.lowest.map((m) => [m.model, f6(m.score), m.line]) },
          { kind: 'table', caption: 'highest', head: ['model', 'score', 'line'], rows: report.highest.map((m) => [m.model, f6(m.score), m.line]) },
        ],
      },
    ],
  };
}

function sides(report: DownloadsReport): { name: string; side: SideReport; colour: string }[] {
  const out: { name: string; side: SideReport; colour: string }[] = [];
  if (report.same) out.push({ name: 'same family', side: report.same, colour: SAME_COLOUR });
  if (report.diff) out.push({ name: 'different family', side: report.diff, colour: DIFF_COLOUR });
  return out;
}

export function downloadsDashboard(report: DownloadsReport, opts: DashboardOptions = {}): DashboardSpec {
  const ss = sides(report);
  const groupLabels = ss[0]?.side.groups.map((g) => g.label) ?? [];
  const entries: [string, string][] = [];
  for (const { name, side } of ss) {
    entries.push([`${name}: valid / rows`, `${side.valid} / ${side.rows}`]);
    entries.push([`${name}: mean overlap`, f4(side.overall.mean)]);
    entries.push([`${name}: low (≤ ${report.options.low}) mean, n`, `${f4(side.low.mean)} · ${side.low.count}`]);
    entries.push([`${name}: Spearman ρ (p)`, `${f4(side.correlation.spearman.rho)} (${num(side.correlation.spearman.p, 4)})`]);
  }
  if (report.low_ratio !== null) entries.push(['low-download mean ratio same / diff', `${report.low_ratio.toFixed(1)}×`]);
  if (report.tests) {
    entries.push(['Welch t (p)', `${f4(report.tests.welch.t)} (${report.tests.welch.p === null ? '-' : report.tests.welch.p.toExponential(2)})`]);
    entries.push(['Mann–Whitney U (p)', `${num(report.tests.mann_whitney.u)} (${report.tests.mann_whitney.p === null ? '-' : report.tests.mann_whitney.p.toExponential(2)})`]);
  }
  const boxGroups = groupLabels.flatMap((label) =>
    ss.map(({ name, side, colour }) => ({
      label: `${label} ${name.split(' ')[0]}`,
      values: side.table.filter((t) => t.group === label).map((t) => t.overlap),
      colour,
    })),
  );
  const scoreEdges = report.options.scoreEdges;
  const sections: Section[] = [
    { title: 'Overview', note: 'Valid rows only (overlap ≥ 0). Rows with 0 or unknown downloads form the group `0` and count as low.', items: [{ kind: 'stats', entries }] },
    {
      title: 'Downloads vs overlap',
      note: 'x: downloads on a log axis (log10(downloads + 1), so 0 sits at the left); dashed: least-squares trend of overlap on log10(downloads + 1). Rows with unknown downloads are not plotted.',
      items: [
        {
          kind: 'chart',
          id: 'downloads_scatter',
          svg: scatterLogSvg({
            id: 'downloads_scatter',
            title: 'Overlap vs downloads',
            xLabel: 'downloads (log scale)',
            yLabel: 'bottom-k overlap',
            series: ss.map(({ name, side, colour }) => ({
              name,
              colour,
              points: side.table.filter((t) => t.downloads !== null).map((t) => ({ x: t.downloads as number, y: t.overlap, label: t.model })),
              trend: side.trend,
            })),
          }),
        },
      ],
    },
    {
      title: 'Download groups',
      note: 'Right-closed intervals (lo, hi]; std is the sample standard deviation (n−1), "-" for n < 2.',
      items: [
        {
          kind: 'chart',
          id: 'downloads_box',
          svg: boxPlotSvg({ id: 'downloads_box', title: 'Overlap by download group', yLabel: 'bottom-k overlap', groups: boxGroups }),
        },
        {
          kind: 'chart',
          id: 'downloads_group_counts',
          svg: histogramSvg({
            id: 'downloads_group_counts',
            title: 'Models per download group',
            xLabel: 'downloads',
            categories: groupLabels,
            series: ss.map(({ name, side, colour }) => ({ name, colour, counts: side.groups.map((g) => g.count) })),
          }),
        },
        {
          kind: 'table',
          head: ['side', 'group', 'count', 'mean', 'median', 'std', 'min', 'max'],
          rows: ss.flatMap(({ name, side }) => side.groups.map((g) => [name, g.label, g.count, f4(g.mean), f4(g.median), f4(g.std), f4(g.min), f4(g.max)])),
        },
      ],
    },
    {
      title: 'Overlap distribution',
      items: [
        {
          kind: 'chart',
          id: 'overlap_histogram',
          svg: valueHistogramSvg({
            id: 'overlap_histogram',
            title: opts.logHistogram ? 'Overlap histogram (log counts)' : 'Overlap histogram (share of valid rows)',
            xLabel: 'bottom-k overlap',
            share: true,
            log: opts.logHistogram,
            series: ss.map(({ name, side, colour }) => ({ name, colour, values: side.table.map((t) => t.overlap) })),
          }),
        },
        {
          kind: 'chart',
          id: 'overlap_cdf',
          svg: cdfSvg({
            id: 'overlap_cdf',
            title: 'Overlap CDF',
            xLabel: 'bottom-k overlap',
            series: ss.map(({ name, side, colour }) => ({ name, colour, values: side.table.map((t) => t.overlap) })),
          }),
        },
        {
          kind: 'chart',
          id: 'overlap_box',
          svg: boxPlotSvg({
            id: 'overlap_box',
            title: 'Overlap, same vs different family',
            yLabel: 'bottom-k overlap',
            groups: ss.map(({ name, side, colour }) => ({ label: name, values: side.table.map((t) => t.overlap), colour })),
          }),
        },
        {
          kind: 'table',
          head: ['side', 'bin', 'count', 'share', 'invalid rate'],
          rows: ss.flatMap(({ name, side }) => side.distribution.bins.map((b) => [name, b.label, b.count, pct(b.share), pct(side.invalid_rate)])),
        },
      ],
    },
    {
      title: 'Filtering and confidence',
      note: `Conservative keeps downloads > ${report.options.high}, balanced > ${report.options.low}. Confidence weight: 1.0 (> ${report.options.high}), 0.7 (> ${report.options.low}), else 0.3. Score bins: ${scoreEdges.join(', ')}.`,
      items: [
        {
          kind: 'table',
          head: ['side', 'strategy', 'rule', 'kept', 'removed', 'kept share', 'mean kept', 'mean removed'],
          rows: ss.flatMap(({ name, side }) =>
            side.strategies.map((s) => [name, s.name, s.rule, s.kept, s.removed, pct(s.kept_share), f4(s.mean_kept), f4(s.mean_removed)]),
          ),
        },
        {
          kind: 'table',
          head: ['side', 'flag', 'count', 'mean overlap', 'confidence-weighted mean'],
          rows: ss.flatMap(({ name, side }) => [
            ...(['high', 'medium', 'low'] as const).map((k) => [name, k, side.flags[k].count, f4(side.flags[k].mean), '']),
            [name, 'all', side.valid, f4(side.overall.mean), f4(side.confidence_weighted.mean)],
          ]),
        },
      ],
    },
    {
      title: 'Anomalies',
      note:
        'downloads < 10 with overlap > 0.9 (likely re-uploads or test copies); declared derivatives whose overlap is within the different-family range (≤ its 95th percentile, or < 0.1 without a different-family file): possibly a mislabelled base. Each row names its evidence.',
      items: [
        {
          kind: 'table',
          head: ['side', 'model', 'downloads', 'overlap', 'kind', 'evidence'],
          rows: ss.flatMap(({ name, side }) => side.anomalies.map((a) => [name, a.model, a.downloads, f6(a.overlap), a.kind, a.evidence])),
        },
      ],
    },
    {
      title: 'All rows',
      items: [
        {
          kind: 'table',
          head: ['side', 'model', 'downloads', 'overlap', 'group', 'flag', 'weighted'],
          rows: ss.flatMap(({ name, side }) => side.table.map((t) => [name, t.model, t.downloads, f6(t.overlap), t.group, t.flag, f6(t.weighted_score)])),
        },
      ],
    },
  ];
  return { title: 'Downloads analysis', subtitle: ss.map((s) => `${s.name}: ${s.side.file}`).join(' · '), sections };
}

export function rocDashboard(report: RocReport, same: number[], diff: number[], files: { same: string; diff: string }, opts: DashboardOptions = {}): DashboardSpec {
  const bySide = [
    { name: 'same family', colour: SAME_COLOUR, values: same },
    { name: 'different family', colour: DIFF_COLOUR, values: diff },
  ];
  return {
    title: 'ROC: same vs different family',
    subtitle: `same: ${files.same} · different: ${files.diff}`,
    sections: [
      {
        title: 'Overview',
        note: `AUC by the trapezoid rule over all thresholds; ties between a same and a different score count half (${report.tied_pairs} tied pairs). Predicted "same" when score ≥ threshold. Best threshold maximises Youden's J.`,
        items: [
          {
            kind: 'stats',
            entries: [
              ['AUC', num(report.auc, 5)],
              ['same / different', `${report.same_count} / ${report.diff_count}`],
              ['best threshold', f6(report.best_threshold)],
              ["Youden's J", f4(report.youden_j)],
              ['accuracy', f4(report.accuracy)],
              ['precision', f4(report.precision)],
              ['recall', f4(report.recall)],
              ['specificity', f4(report.specificity)],
              ['F1', f4(report.f1)],
              [`threshold for TPR ≥ ${report.target_tpr}`, `${f6(report.target_tpr_threshold)} (FPR ${f4(report.target.fpr)})`],
            ],
          },
        ],
      },
      {
        title: 'Curves',
        items: [
          {
            kind: 'chart',
            id: 'roc_curve',
            svg: rocSvg({
              id: 'roc_curve',
              title: 'ROC curve',
              curve: report.curve,
              auc: report.auc,
              points: [
                { name: `best J (t=${num(report.best_threshold, 4)})`, fpr: report.fpr, tpr: report.tpr, threshold: report.best_threshold, colour: '#D55E00' },
                { name: `TPR ≥ ${report.target_tpr} (t=${num(report.target_tpr_threshold, 4)})`, fpr: report.target.fpr, tpr: report.target.tpr, threshold: report.target_tpr_threshold, colour: '#009E73' },
              ],
            }),
          },
          chart('score_cdf', (id) => cdfSvg({ id, title: 'Score CDF', xLabel: 'score', series: bySide })),
          chart('score_histogram', (id) =>
            valueHistogramSvg({
              id,
              title: opts.logHistogram ? 'Score histogram (log counts)' : 'Score histogram (share of each side)',
              xLabel: 'score',
              share: true,
              log: opts.logHistogram,
              series: bySide,
            }),
          ),
          chart('score_box', (id) => boxPlotSvg({ id, title: 'Scores', yLabel: 'score', groups: bySide.map(({ name, ...g }) => ({ label: name, ...g })) })),
        ],
      },
      {
        title: 'Thresholds',
        items: [
          {
            kind: 'table',
            head: ['threshold', 'TP', 'FP', 'TN', 'FN', 'TPR', 'FPR', 'precision', 'accuracy', 'specificity', 'F1', 'J'],
            rows: report.table.map((r) => [f6(r.threshold), r.tp, r.fp, r.tn, r.fn, f4(r.tpr), f4(r.fpr), f4(r.precision), f4(r.accuracy), f4(r.specificity), f4(r.f1), f4(r.youden_j)]),
          },
        ],
      },
    ],
  };
}

function groupItems(prefix: string, title: string, groups: PairGroup[], yLabel: string): Item[] {
  if (groups.length === 0) return [{ kind: 'text', text: `No ${title.toLowerCase()} pairs.` }];
  const g = groups.map((x, i) => ({ label: x.label, values: x.pairs.map((p) => p.score), colour: categorical(i) }));
  return [
    { kind: 'chart', id: `${prefix}_box`, svg: boxPlotSvg({ id: `${prefix}_box`, title: `${title}: box plots`, yLabel, groups: g }) },
    { kind: 'chart', id: `${prefix}_quartiles`, svg: quartileBarsSvg({ id: `${prefix}_quartiles`, title: `${title}: quartiles`, xLabel: yLabel, groups: g }) },
    {
      kind: 'table',
      head: ['group', 'pairs', 'mean', 'min', 'max', 'variance', 'median'],
      rows: groups.map((x) => [x.label, x.count, f6(x.mean), f6(x.min), f6(x.max), f6(x.variance), f6(x.median)]),
    },
  ];
}

export function heatmapData(title: string, matrix: SimilarityMatrix, info?: readonly ModelInfo[], colourRange: ColourRange = 'metric'): HeatmapData {
  const byId = new Map((info ?? []).map((m) => [m.model_id, m]));
  return {
    title,
    models: matrix.models,
    values: matrix.values,
    colour_range: colourRange,
    info: info
      ? matrix.models.map((m) => {
          const x = byId.get(m);
          return x ? { family: x.family, model_type: x.model_type, display_name: x.display_name } : null;
        })
      : undefined,
  };
}

/** Above this many models the dashboards skip the clustered order (average linkage is O(n³)). */
export const CLUSTERED_ORDER_MAX_MODELS = 1500;

export interface FamiliesDashboardOptions extends DashboardOptions {
  /** Heatmap order shown first (and in heatmap.svg): by family (default) or clustered (average linkage on 1 − score). */
  order?: 'family' | 'clustered';
}

export function familiesDashboard(
  report: FamilyReport | null,
  matrix: SimilarityMatrix,
  info: readonly ModelInfo[] | undefined,
  label = 'score',
  options: FamiliesDashboardOptions = {},
): DashboardSpec {
  const n = matrix.models.length;
  const off: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && Number.isFinite(matrix.values[i][j]) && matrix.values[i][j] >= 0) off.push(matrix.values[i][j]);
  const src = matrix.source;
  const sections: Section[] = [
    {
      title: 'Similarity matrix',
      note: 'Canvas heatmap: wheel or +/− to zoom, drag to pan, hover a cell for the exact value and both models. Grey cells: failed models (-1) or missing values. Order "clustered": leaf order of an average-linkage tree on 1 − score (mean of both directions).',
      items: [
        {
          kind: 'stats',
          entries: [
            ['models', String(n)],
            ...(report
              ? ([
                  ['with model info', String(report.models_with_info)],
                  ['families', String(report.families.length)],
                  ['failed models', String(report.failed_models.length)],
                ] as [string, string][])
              : []),
            ['off-diagonal mean', f4(off.length ? off.reduce((a, b) => a + b, 0) / off.length : null)],
            ...(src.method ? ([['method / metric', `${src.method} / ${src.metric}`]] as [string, string][]) : []),
          ],
        },
        {
          kind: 'heatmap',
          id: 'heatmap',
          data: {
            ...heatmapData(src.method ? `${src.method} / ${src.metric}` : 'similarity', matrix, info, options.colourRange),
            ...(options.order === 'clustered' || n <= CLUSTERED_ORDER_MAX_MODELS ? { order: clusteredOrder(matrix, 'average') } : {}),
            ...(options.order ? { defaultOrder: options.order } : {}),
          },
        },
      ],
    },
  ];
  if (report) {
    sections.push(
      { title: 'Intrafamily', note: 'All unordered pairs inside each family with ≥ 2 models; groups by mean, descending.', items: groupItems('intrafamily', 'Intrafamily', report.intrafamily, label) },
      { title: 'Interfamily', note: 'All cross pairs of each pair of families.', items: groupItems('interfamily', 'Interfamily', report.interfamily, label) },
      { title: 'Type pairs', note: 'Inside each family, pairs of models of different types, grouped across families by the sorted type pair.', items: groupItems('type_pairs', 'Type pairs', report.type_pairs, label) },
      {
        title: 'All pairs',
        items: [
          {
            kind: 'table',
            head: ['score', 'model A', 'family A', 'type A', 'model B', 'family B', 'type B'],
            rows: topPairs(report, 5000).map((p) => [f6(p.score), p.a, p.family_a, p.type_a, p.b, p.family_b, p.type_b]),
            caption: report.pairs > 5000 ? `the 5000 highest of ${report.pairs} pairs (all are in the text reports and report.json)` : undefined,
          },
        ],
      },
    );
  } else {
    sections.push({
      title: 'Values',
      items: [
        {
          kind: 'chart',
          id: 'values_histogram',
          svg: valueHistogramSvg({ id: 'values_histogram', title: 'Off-diagonal values', xLabel: label, log: options.logHistogram, series: [{ name: 'pairs', colour: SAME_COLOUR, values: off }] }),
        },
      ],
    });
  }
  return { title: 'Similarity matrix and families', subtitle: src.file, sections };
}

/**
 * The lineage dashboard: the heatmap in clustered order (the same single-linkage tree as
 * the families) with its dendrogram, the predicted forest drawn as a tree, the findings,
 * parents and families tables.
 */
export function lineageDashboard(report: LineageReport, matrix: SimilarityMatrix): DashboardSpec {
  const t = report.threshold;
  const byModel = new Map(report.parents.map((p) => [p.model, p]));
  const famIndex = new Map(report.families.map((f, k) => [f.family, k]));
  // Failed and degenerate models are listed under the pseudo-families "(failed)" and
  // "(degenerate)": they are left out, not a family.
  const leftOut = new Set([...report.failed_models, ...report.degenerate_models]);
  const realFamilies = report.families.filter((f) => !f.members.every((x) => leftOut.has(x.model)));
  const multi = realFamilies.filter((f) => f.members.length > 1);
  const role = (m: string) => byModel.get(m)?.role ?? 'isolated';
  const heat: HeatmapData = {
    title: 'pair scores (clustered order)',
    models: matrix.models,
    values: matrix.values,
    info: matrix.models.map((m) => {
      const p = byModel.get(m);
      // Single-model families get no colour strip.
      const f = p ? report.families[famIndex.get(p.family) ?? -1] : undefined;
      const fam = p && f && multi.includes(f) ? p.family : null;
      return { family: fam, model_type: role(m), display_name: m };
    }),
    order: report.dendrogram.order,
    defaultOrder: 'clustered',
  };
  const colours = matrix.models.map((m) => {
    const p = byModel.get(m);
    const k = p ? famIndex.get(p.family) : undefined;
    return k !== undefined && multi.includes(report.families[k]) ? categorical(multi.indexOf(report.families[k])) : null;
  });
  const findingsRows = report.findings.map((x) => [x.kind.replace(/_/g, ' '), x.model, x.other, f4(x.score), x.detail]);
  const by = (k: string) => report.findings.filter((x) => x.kind === k).length;
  const sections: Section[] = [
    {
      title: 'Overview',
      note:
        `Pair score = mean of M[i][j] and M[j][i]. Threshold: ${t.rule}. Copies: score ≥ ${report.options.copy_threshold} with the same score profile (r ≥ ${report.options.copy_profile_correlation}). ` +
        `Families: single-linkage clusters at the threshold. Parent (${report.method}): see docs/lineage-recovery.md.`,
      items: [
        {
          kind: 'stats',
          entries: [
            ['models', String(report.models)],
            ['same/different threshold', `${num(t.value, 4)}${t.learned ? ' (learned)' : ''}`],
            ['families (≥ 2 models)', String(multi.length)],
            ['single models', String(realFamilies.length - multi.length)],
            ['copy groups', String(report.copy_groups.length)],
            ['predicted parents', String(report.parents.filter((p) => p.parent).length)],
            ['failed models', String(report.failed_models.length)],
            ['degenerate sketches (left out)', String(report.degenerate_models.length)],
            ...(report.metadata
              ? ([
                  ['declared bases contradicted', String(by('declared_base_contradicted'))],
                  ['undeclared relations', String(by('undeclared_relation'))],
                ] as [string, string][])
              : []),
          ],
        },
      ],
    },
    {
      title: 'Clustered heatmap',
      note: 'Rows and columns in the leaf order of the single-linkage tree (switch to "by family" or "as given" above the heatmap); colour strips mark predicted families; the dendrogram has the same row order, with the family cut dashed.',
      items: [
        { kind: 'heatmap', id: 'heatmap', data: heat },
        {
          kind: 'chart',
          id: 'dendrogram',
          svg: dendrogramSvg({
            id: 'dendrogram',
            title: 'Dendrogram (single linkage on 1 − score)',
            labels: report.dendrogram.order.map((i) => matrix.models[i]),
            order: report.dendrogram.order,
            merges: report.dendrogram.merges,
            cut: 1 - t.value,
            colours,
          }),
        },
      ],
    },
    {
      title: 'Predicted forest',
      note: 'Each model under its predicted parent; bold, outlined: roots; dashed: copies of one checkpoint; colour: family. Hover a model for the evidence.',
      items: [
        {
          kind: 'chart',
          id: 'forest',
          svg: forestSvg({
            id: 'forest',
            title: 'Predicted lineage',
            nodes: report.parents.map((p) => ({
              id: p.model,
              parent: p.parent,
              group: p.family,
              dashed: p.role === 'copy',
              tip: `${p.model}\nparent: ${p.parent ?? '(root)'}\nconfidence ${num(p.confidence, 3)}\nfamily ${p.family}\n${p.reason}`,
            })),
          }),
        },
      ],
    },
    {
      title: 'Findings',
      note: report.metadata
        ? 'Declared bases (from --hub-metadata) whose score is below the same/different threshold, or far below the closest model; strong predicted relations that no declared base explains.'
        : 'Give --hub-metadata with a base_model column to compare declared bases with the scores.',
      items: report.metadata
        ? [{ kind: 'table', head: ['kind', 'model', 'other', 'score', 'detail'], rows: findingsRows, caption: findingsRows.length ? undefined : 'no findings' }]
        : [{ kind: 'text', text: 'No metadata: no findings.' }],
    },
    {
      title: 'Parents',
      items: [
        {
          kind: 'table',
          head: ['model', 'parent', 'confidence', 'family', 'score', 'rank', 'role', 'reason'],
          rows: report.parents.map((p) => [p.model, p.parent, num(p.confidence, 3), p.family, f4(p.score), p.rank, p.role, p.reason]),
        },
      ],
    },
    {
      title: 'Families',
      items: [
        {
          kind: 'table',
          head: ['family', 'root', 'models', 'members (confidence)'],
          rows: multi.map((f) => [f.family, f.root, f.members.length, f.members.map((m) => `${m.model} (${num(m.confidence, 2)})`).join(', ')]),
        },
      ],
    },
  ];
  return { title: 'Lineage', subtitle: report.source.file, sections };
}
