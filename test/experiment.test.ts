import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';
import { tinyZoo, type ZooModel } from './helpers/zoo.js';
import { ROOT } from './helpers/cli.js';

let zooDir: string;
let models: ZooModel[];
let work: string;
let reg: string;

beforeAll(async () => {
  ({ dir: zooDir, models } = await tinyZoo());
  work = tmpDir('modelprint-exp-');
  reg = path.join(work, 'reg.db');
  const r = runCli(['models', 'import', path.join(zooDir, 'models.csv'), '--registry', reg, '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(parseJson<{ added: unknown[] }>(r).added).toHaveLength(models.length);
});

interface ExpResult {
  computed: Record<string, number>;
  reused: Record<string, number>;
  failed: unknown[];
  files: { similarity: string; fingerprints: string };
}

function writeConfig(ids: string[], extra: Record<string, unknown> = {}): string {
  const cfg = {
    models: ids,
    methods: ['bottomk', 'input_output', 'weight'],
    method_args: {
      input_output: { n0: 16, probe_tokens_path: path.join(ROOT, 'configs', 'probe_tokens.txt'), target_tokens_path: path.join(ROOT, 'configs', 'target_tokens.txt') },
      bottomk: { k: 200, num_prompts: 3, prefix_len: 4, total_len: 20 },
    },
    metrics: ['overlap', 'l1', 'cosine'],
    ...extra,
  };
  const f = path.join(work, `cfg-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, JSON.stringify(cfg));
  return f;
}

describe('experiment runner', () => {
  it('runs bottomk, input_output and weight; a second run with --use-existing recomputes nothing', () => {
    // alpha base + two derivatives, beta base + one derivative (same tokenizer), delta base (other vocab)
    const pick = ['alpha-base', 'alpha-ft-light', 'alpha-int8', 'beta-base', 'beta-lora', 'delta-base'];
    const cfg = writeConfig(pick);
    const out1 = path.join(work, 'exp1');
    const r1 = runCli(['experiment', 'run', '--config', cfg, '--registry', reg, '--write-to-registry', '--output-dir', out1, '--json', '--progress', 'none']);
    expect(r1.code, r1.stderr).toBe(0);
    const j1 = parseJson<ExpResult>(r1);
    expect(j1.computed).toEqual({ bottomk: 6, input_output: 6, weight: 6 });
    expect(j1.failed).toEqual([]);

    const out2 = path.join(work, 'exp2');
    const r2 = runCli(['experiment', 'run', '--config', cfg, '--registry', reg, '--use-existing', '--output-dir', out2, '--json', '--progress', 'jsonl']);
    expect(r2.code, r2.stderr).toBe(0);
    const j2 = parseJson<ExpResult>(r2);
    expect(j2.computed).toEqual({ bottomk: 0, input_output: 0, weight: 0 });
    expect(j2.reused).toEqual({ bottomk: 6, input_output: 6, weight: 6 });
    expect(r2.stderr).not.toContain('"phase":"loading"');

    const sim = JSON.parse(fs.readFileSync(path.join(out2, 'similarity_matrices.json'), 'utf8')) as {
      similarity_matrices: Record<string, Record<string, { matrix: number[][]; models: string[] }>>;
    };
    expect(Object.keys(sim.similarity_matrices).sort()).toEqual(['bottomk', 'input_output', 'weight']);
    expect(Object.keys(sim.similarity_matrices.bottomk)).toEqual(['overlap']);
    expect(Object.keys(sim.similarity_matrices.input_output).sort()).toEqual(['cosine', 'l1']);
    const first = JSON.parse(fs.readFileSync(path.join(out1, 'similarity_matrices.json'), 'utf8'));
    expect(sim).toEqual(first); // reused fingerprints give the same matrices

    // Derivatives are closer to their base than unrelated models, for every method and metric.
    for (const [method, byMetric] of Object.entries(sim.similarity_matrices)) {
      for (const [metric, { matrix, models: ids }] of Object.entries(byMetric)) {
        const at = (a: string, b: string) => matrix[ids.indexOf(a)][ids.indexOf(b)];
        const related = Math.min(at('alpha-base', 'alpha-ft-light'), at('alpha-base', 'alpha-int8'));
        const unrelated = Math.max(at('alpha-base', 'beta-base'), at('alpha-base', 'beta-lora'), at('alpha-base', 'delta-base'));
        expect(related, `${method}/${metric}`).toBeGreaterThan(unrelated);
      }
    }
    for (const f of ['fingerprints.json', 'similarity_bottomk_overlap.csv', 'similarity_input_output_cosine.csv', 'similarity_weight_l1.csv']) {
      expect(fs.existsSync(path.join(out2, f)), f).toBe(true);
    }

    // analyze families reads the experiment output.
    if (fs.existsSync(path.join(ROOT, 'dist', 'commands', 'analyze', 'families.js'))) {
      const info = path.join(work, 'info.json');
      fs.writeFileSync(info, JSON.stringify(models.map((m) => ({ model_id: m.model_id, family: m.family, model_type: m.model_type, display_name: m.model_id }))));
      const fam = runCli(['analyze', 'families', '--matrix', path.join(out2, 'similarity_matrices.json'), '--model-info', info, '--method', 'input_output', '--metric', 'cosine']);
      expect(fam.code, fam.stderr).toBe(0);
      expect(fam.stdout).toContain('alpha');
    }
  });

  it('names the config field that is wrong', () => {
    const bad = path.join(work, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ models: ['1'], methods: ['bottomk', 'nope'], metrics: ['overlap'] }));
    const r = runCli(['experiment', 'run', '--config', bad, '--registry', reg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('E_CONFIG');
    expect(r.stderr).toContain('methods[1]');
    const missing = writeConfig(['alpha-base', 'no-such-model']);
    const r2 = runCli(['experiment', 'run', '--config', missing, '--registry', reg]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('models[1]');
    const noIo = path.join(work, 'noio.json');
    fs.writeFileSync(noIo, JSON.stringify({ models: ['1'], methods: ['input_output'], metrics: ['l1'] }));
    expect(runCli(['experiment', 'run', '--config', noIo, '--registry', reg]).stderr).toContain('method_args.input_output');
  });

  it('names models the way users do: registry name / Hub id or the path they were registered from', () => {
    const example = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs', 'experiment.example.json'), 'utf8')) as { models: string[] };
    for (const m of example.models) expect(m, 'no numeric ids that depend on import order').not.toMatch(/^\d+$/);
    const byPath = path.join(zooDir, 'delta-base');
    const cfg = path.join(work, 'names.json');
    fs.writeFileSync(cfg, JSON.stringify({ models: ['alpha-base', byPath], methods: ['architecture'], metrics: ['cosine'] }));
    const r = runCli(['experiment', 'run', '--config', cfg, '--registry', reg, '-o', path.join(work, 'names'), '--json', '--progress', 'none']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ models: { name: string }[] }>(r).models.map((m) => m.name)).toEqual(['alpha-base', 'delta-base']);
  });
});
