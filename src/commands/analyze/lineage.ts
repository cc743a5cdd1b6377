import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { LINEAGE_DEFAULTS, type LineageMethod, type LineageReport, analyzeLineage } from '../../analysis/lineage.js';
import { loadLineageMetadata } from '../../analysis/lineage-input.js';
import { loadMatrix } from '../../analysis/input.js';
import { lineageDashboard, lineageFiles, writeDashboard } from '../../report/index.js';
import { renderTable } from '../../ui/table.js';
import { fmt } from '../../util/format.js';

type Result = LineageReport & { output?: { dir: string; files: string[] } };

export default class AnalyzeLineage extends BaseCommand<typeof AnalyzeLineage> {
  static override summary = 'Recover lineage from a similarity matrix: families, a parent per model, and findings.';
  static override description =
    'Reads a matrix CSV written by `modelprint matrix` (or the experiment runner JSON; --method / --metric choose) and ' +
    'predicts families (clusters, with a confidence per member), a parent per model (or none: a root) with the ' +
    'evidence, and — when --hub-metadata has a base_model column — findings: declared bases the scores contradict, ' +
    'and strong relations nobody declared. The declared bases are never used to predict; created_at and downloads ' +
    'are (to choose among copies and to orient edges). Method: docs/lineage-recovery.md. With --output-dir: ' +
    'parents.csv (model,parent,confidence,family,reason), families.csv, findings.csv, report.json and dashboard.html ' +
    '(heatmap in clustered order with its dendrogram, the predicted forest as a tree, the findings table).';
  static override examples = [
    '<%= config.bin %> analyze lineage --matrix overlap_matrix.csv',
    '<%= config.bin %> analyze lineage --matrix overlap_matrix.csv --hub-metadata hub.csv -o lineage/',
    '<%= config.bin %> analyze lineage --matrix matrix/matrix.csv --algorithm arborescence --json',
  ];
  static override flags = {
    matrix: Flags.string({ char: 'm', description: 'Similarity matrix: CSV of `modelprint matrix` or runner JSON.', required: true }),
    'hub-metadata': Flags.string({ description: 'CSV with model_id and any of base_model, downloads, created_at.' }),
    method: Flags.string({ description: 'Method in a runner JSON (default: the first).' }),
    metric: Flags.string({ description: 'Metric in a runner JSON (default: the first of the method).' }),
    algorithm: Flags.string({
      description: 'hub: rank-based parent choice (default, measured best); arborescence: Chu-Liu/Edmonds on directed scores; nearest: nearest neighbour above the threshold.',
      options: ['hub', 'arborescence', 'nearest'],
      default: LINEAGE_DEFAULTS.method,
    }),
    threshold: Flags.string({ description: 'Same/different threshold on the pair score (default: learned from the scores).' }),
    window: Flags.string({ description: `Parent candidates: scores within this fraction of the best score among the models that outrank it (default ${LINEAGE_DEFAULTS.window}).` }),
    'copy-threshold': Flags.string({ description: `Score at or above which two models may be copies (default ${LINEAGE_DEFAULTS.copyThreshold}).` }),
    'chain-margin': Flags.string({ description: `Chain step margin: move to a closer model (that also outranks this one) between this one and its chosen candidate when their score is this much below both others (default ${LINEAGE_DEFAULTS.chainMargin}; 0 disables).` }),
    'name-prior': Flags.boolean({
      description:
        'Use model names as evidence: among exact copies without created_at / downloads, prefer the upload whose namespace names the model; orient a related pair when one name extends the other (Qwen2-7B → Qwen2-7B-Instruct, X-Base → X); take the most specific related model whose name this one extends as its parent (see --name-floor); a candidate whose size token (7B, 1.7B) differs by more than 1.5× is not a parent. --no-name-prior: scores and metadata only.',
      default: LINEAGE_DEFAULTS.namePrior,
      allowNo: true,
    }),
    'name-floor': Flags.string({
      description:
        'How low the score of a name parent may be: "unrelated" (default: above the mean of the learned "different" score component, i.e. a typical unrelated pair) or "tau" (the same/different threshold).',
      options: ['unrelated', 'tau'],
    }),
    'output-dir': Flags.string({ char: 'o', description: 'Write parents.csv, families.csv, findings.csv, report.json and dashboard.html here.' }),
  };

  private number(flag: string, value: string | undefined, lo: number, hi: number): number | undefined {
    if (value === undefined) return undefined;
    const v = Number(value);
    if (!Number.isFinite(v) || v < lo || v > hi) {
      throw new ModelprintError('E_USAGE', `--${flag} must be a number in [${lo}, ${hi}], got "${value}"`, { subject: `--${flag}`, hint: `e.g. --${flag} ${(lo + hi) / 2}` });
    }
    return v;
  }

  async run(): Promise<Result> {
    const f = this.flags;
    const matrix = loadMatrix(f.matrix, { method: f.method, metric: f.metric });
    const metadata = f['hub-metadata'] ? loadLineageMetadata(f['hub-metadata']) : undefined;
    if (metadata && !matrix.models.some((m) => metadata.has(m))) {
      throw new ModelprintError('E_INPUT', `none of the ${matrix.models.length} models in ${f.matrix} is in ${f['hub-metadata']}`, {
        subject: f['hub-metadata'],
        hint: `model ids must match exactly, e.g. "${matrix.models[0] ?? ''}"`,
      });
    }
    const report = analyzeLineage(matrix, {
      method: f.algorithm as LineageMethod,
      threshold: this.number('threshold', f.threshold, 0, 1),
      window: this.number('window', f.window, 0, 1),
      copyThreshold: this.number('copy-threshold', f['copy-threshold'], 0, 1),
      chainMargin: this.number('chain-margin', f['chain-margin'], 0, 1),
      namePrior: f['name-prior'],
      nameFloor: f['name-floor'] as 'unrelated' | 'tau' | undefined,
      metadata,
    });
    const t = report.threshold;
    this.logger.info(`threshold ${t.value.toFixed(4)} (${t.learned ? 'learned' : t.rule}); ${report.copy_groups.length} copy groups; ${report.families.length} families`);
    if (report.failed_models.length) this.logger.info(`${report.failed_models.length} failed models (-1) left out: ${report.failed_models.slice(0, 5).join(', ')}`);
    if (report.degenerate_models.length) {
      this.logger.warn(`${report.degenerate_models.length} models with degenerate sketches left out: ${report.degenerate_models.slice(0, 5).join(', ')}`);
    }
    const multi = report.families.filter((x) => x.members.length > 1);
    this.out(`families (${multi.length} with 2 or more models, ${report.families.length - multi.length} single models):`);
    this.out(
      multi.length
        ? renderTable(
            ['family (root)', 'models', 'min confidence'],
            multi.slice(0, 30).map((x) => [x.family, x.members.length, fmt(Math.min(...x.members.map((m) => m.confidence)), 3)]),
          )
        : '  (none)',
    );
    const derived = report.parents.filter((p) => p.parent);
    this.out(`parents: ${derived.length} of ${report.models} models have a predicted parent`);
    if (metadata) {
      const by = (k: string) => report.findings.filter((x) => x.kind === k).length;
      this.out(
        `findings: ${by('declared_base_contradicted')} declared bases contradicted, ${by('declared_base_weak')} weak, ` +
          `${by('undeclared_relation')} undeclared relations, ${by('declared_base_missing')} declared bases not in the matrix`,
      );
    }
    const result: Result = { ...report };
    if (f['output-dir']) {
      const w = writeDashboard(f['output-dir'], lineageDashboard(report, matrix), report, lineageFiles(report));
      result.output = { dir: w.dir, files: w.files };
      this.logger.info(`wrote ${w.html}`);
    }
    return result;
  }
}
