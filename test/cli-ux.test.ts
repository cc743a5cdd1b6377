import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';

describe('oclif conventions', () => {
  it('`modelprint help <cmd>`, `<cmd> -h` and `<cmd> --help` all print the command help', () => {
    const a = runCli(['help', 'lineage']);
    const b = runCli(['lineage', '-h']);
    const c = runCli(['lineage', '--help']);
    for (const r of [a, b, c]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Base vs derived');
      expect(r.stdout).toContain('--output');
    }
    expect(b.stdout).toBe(c.stdout);
    const topic = runCli(['help', 'analyze', 'roc']);
    expect(topic.code).toBe(0);
    expect(topic.stdout).toContain('--label-column');
    const root = runCli(['help']);
    expect(root.code).toBe(0);
    expect(root.stdout).toContain('autocomplete');
  });

  it('suggests the closest command for a typo, in modelprint\'s error format (and JSON)', () => {
    const r = runCli(['matrx']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error \[E_USAGE\] "matrx" is not a modelprint command \(hint: did you mean `modelprint matrix`\?/);
    const j = runCli(['analyze', 'sumary', '--json']);
    expect(j.code).toBe(2);
    expect(parseJson(j)).toMatchObject({ ok: false, error: { code: 'E_USAGE', subject: 'analyze sumary' } });
    expect(parseJson<{ error: { hint: string } }>(j).error.hint).toContain('modelprint analyze summary');
    const far = runCli(['qqqqqqqqqqqqqqq']);
    expect(far.code).toBe(2);
    expect(far.stderr).not.toContain('did you mean');
  });

  it('writes a shell completion script', () => {
    const cache = tmpDir();
    const env = { XDG_CACHE_HOME: cache, HOME: cache };
    const refresh = runCli(['autocomplete', '--refresh-cache'], { env });
    expect(refresh.code, refresh.stderr).toBe(0);
    const r = runCli(['autocomplete', 'script', 'bash'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('MODELPRINT_AC_BASH_SETUP_PATH');
    const dir = path.join(cache, 'modelprint', 'autocomplete');
    const all = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => fs.readFileSync(path.join(e.parentPath, e.name), 'utf8')).join('\n');
    expect(all).toContain('analyze');
    expect(all).toContain('neighbours');
    expect(all).toContain('--output-dir');
  });

  it('usage hints name the real command', () => {
    const r = runCli(['analyze', 'roc', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('(hint: see `modelprint analyze roc --help`)');
    expect(r.stderr).not.toContain('<command>');
  });
});

describe('one flag vocabulary', () => {
  it('lists --registry only on commands that open the registry', () => {
    expect(runCli(['models', 'list', '--help']).stdout).toContain('--registry');
    expect(runCli(['matrix', '--help']).stdout).toContain('--registry');
    for (const cmd of [['analyze', 'roc'], ['analyze', 'summary'], ['similarity'], ['zoo', 'create'], ['models', 'inspect']]) {
      const r = runCli([...cmd, '--help']);
      expect(r.stdout, cmd.join(' ')).not.toContain('--registry');
    }
    const r = runCli(['analyze', 'summary', '--input', 'x.csv', '--registry', 'r.db']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[E_USAGE] Nonexistent flag: --registry');
  });

  it('uses -o/--output for a file and -o/--output-dir for a folder everywhere', () => {
    const file = [['lineage'], ['similarity'], ['similarity', 'merge'], ['registry', 'export'], ['bench']];
    const dir = [['matrix'], ['demo'], ['experiment', 'run'], ['analyze', 'lineage'], ['analyze', 'roc'], ['analyze', 'summary'], ['analyze', 'families'], ['analyze', 'downloads'], ['analyze', 'neighbours']];
    for (const cmd of file) {
      const h = runCli([...cmd, '--help']).stdout;
      expect(h, cmd.join(' ')).toMatch(/-o, --output=<value>/);
      expect(h, cmd.join(' ')).not.toMatch(/--out(-dir)?[ =]/);
    }
    for (const cmd of dir) {
      const h = runCli([...cmd, '--help']).stdout;
      expect(h, cmd.join(' ')).toMatch(/-o, --output-dir=<value>/);
      expect(h, cmd.join(' ')).not.toMatch(/--out(-dir)?[ =]/);
    }
  });

  it('keeps the old spellings as deprecated aliases, with a warning', () => {
    const dir = tmpDir();
    const reg = path.join(dir, 'r.db');
    const r = runCli(['registry', 'export', '--registry', reg, '--out', path.join(dir, 'a.jsonl'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: The "--out" flag has been deprecated\. Use "--output \| -o" instead\./m);
    expect(parseJson<{ out: string }>(r).out).toBe(path.join(dir, 'a.jsonl'));
    expect(fs.existsSync(path.join(dir, 'a.jsonl'))).toBe(true);
    const n = runCli(['registry', 'export', '--registry', reg, '-o', path.join(dir, 'b.jsonl')]);
    expect(n.code).toBe(0);
    expect(n.stderr).not.toContain('deprecated');
  });

  it('writes snake_case keys in every --json document (models list included)', () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'm'));
    fs.writeFileSync(path.join(dir, 'm', 'config.json'), '{"model_type":"llama"}');
    expect(runCli(['models', 'add', './m', '--family', 'F', '--model-type', 'Base', '--display-name', 'M'], { cwd: dir }).code).toBe(0);
    const docs = [
      runCli(['models', 'list', '--json'], { cwd: dir }).stdout,
      runCli(['models', 'show', 'm', '--json'], { cwd: dir }).stdout,
      runCli(['registry', 'info', '--json'], { cwd: dir }).stdout,
      runCli(['registry', 'migrate', '--json'], { cwd: dir }).stdout,
    ];
    const keys = (v: unknown): string[] =>
      Array.isArray(v) ? v.flatMap(keys) : v && typeof v === 'object' ? Object.entries(v).flatMap(([k, x]) => [k, ...keys(x)]) : [];
    for (const d of docs) {
      const all = keys(JSON.parse(d));
      expect(all.length).toBeGreaterThan(3);
      for (const k of all) expect(k, d).toMatch(/^[a-z0-9_]+$/);
    }
    expect(JSON.parse(docs[0]).models[0]).toMatchObject({ model_type: 'Base', display_name: 'M', family: 'F' });
  });
});
