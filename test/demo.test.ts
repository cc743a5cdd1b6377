import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';

interface DemoSummary {
  models: number;
  failed: number;
  quality: {
    relations: Array<{ relation: string; count: number; mean: number; min: number }>;
    auc_all: number;
    auc_without_hard: number;
    reupload_scores: number[];
    nearest_same_family_rate: number;
    same_tokenizer_negatives: number;
  };
  files: { csv: string; npy: string; lineage: string[]; nearest: string; dashboard: string | null; summary: string };
}

describe('demo on the tiny zoo (detection quality)', () => {
  it('recovers lineage: AUC ≥ 0.99 without the hard relations, re-uploads score 1.0, every output written', () => {
    const dir = tmpDir();
    const r = runCli(['demo', '--size', 'tiny', '--output-dir', path.join(dir, 'demo'), '--num-prompts', '3', '--k', '200', '--progress', 'none', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = parseJson<DemoSummary>(r);
    expect(s.models).toBe(52);
    expect(s.failed).toBe(0);
    const rel = Object.fromEntries(s.quality.relations.map((x) => [x.relation, x]));
    for (const name of ['finetune-light', 'finetune-heavy', 'lora', 'quantize-int8', 'quantize-int4', 'prune', 'vocab-extension', 'reupload', 'merge', 'finetune-chain']) {
      expect(rel[name], name).toBeDefined();
    }
    expect(s.quality.reupload_scores).toEqual([1, 1, 1, 1]);
    expect(s.quality.auc_without_hard).toBeGreaterThanOrEqual(0.99);
    expect(s.quality.auc_all).toBeGreaterThan(0.9);
    // light derivatives are closer than heavy ones: the zoo is graded, not trivially easy
    expect(rel['finetune-light'].mean).toBeGreaterThan(rel['finetune-heavy'].mean);
    for (const f of [s.files.csv, s.files.npy, s.files.nearest, s.files.summary, ...s.files.lineage]) expect(fs.existsSync(f), f).toBe(true);
    expect(s.files.lineage).toHaveLength(4);
    expect(s.files.dashboard && fs.existsSync(s.files.dashboard)).toBe(true);
    // The demo's title appears once (no subtitle repeating it).
    const html = fs.readFileSync(s.files.dashboard!, 'utf8');
    expect(html.match(/modelprint demo: bottom-k overlap of the zoo/g)?.length).toBe(2); // <title> and <h1>
    expect(html).not.toMatch(/<header><h1>[^<]*<\/h1><p>/);
    // a second run reuses the zoo and every sketch from the registry
    const again = runCli(['demo', '--size', 'tiny', '--output-dir', path.join(dir, 'demo'), '--num-prompts', '3', '--k', '200', '--progress', 'jsonl', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('"phase":"loading"');
    expect(parseJson<DemoSummary>(again).quality.auc_all).toBe(s.quality.auc_all);
  });
});
