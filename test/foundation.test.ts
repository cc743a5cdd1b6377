import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';

describe('CLI foundation', () => {
  it('prints help and version', () => {
    const help = runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('models');
    const v = runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/modelprint\/\d+\.\d+\.\d+/);
  });

  it('round-trips models add / list / show / remove through the SQLite registry', () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'some', 'dir'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'some', 'dir', 'config.json'), '{"model_type":"llama"}');
    const add = runCli(
      ['models', 'add', './some/dir', '--family', 'F', '--model-type', 'Base', '--base-model', 'root', '--downloads', '12', '--tag', 'a', '--tag', 'b', '--json'],
      { cwd: dir },
    );
    expect(add.code, add.stderr).toBe(0);
    const added = parseJson<{ id: number; name: string; family: string; model_type: string }>(add);
    expect(added).toMatchObject({ name: 'dir', family: 'F', model_type: 'Base' });
    const list = runCli(['models', 'list', '--json'], { cwd: dir });
    expect(list.code).toBe(0);
    const { models } = parseJson<{ models: Array<Record<string, unknown>> }>(list);
    expect(models).toHaveLength(1);
    expect(models[0]).toMatchObject({
      id: added.id,
      name: 'dir',
      source: path.join(fs.realpathSync(dir), 'some', 'dir'),
      family: 'F',
      model_type: 'Base',
      base_model: 'root',
      downloads: 12,
      tags: ['a', 'b'],
    });
    expect(String(models[0].content_hash)).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.existsSync(path.join(dir, '.modelprint', 'registry.db'))).toBe(true);
    const show = runCli(['models', 'show', String(added.id), '--json'], { cwd: dir });
    expect(parseJson<{ name: string }>(show).name).toBe('dir');
    const dup = runCli(['models', 'add', './some/dir', '--json'], { cwd: dir });
    expect(dup.code).toBe(1);
    expect(parseJson<{ ok: boolean; error: { code: string } }>(dup).error.code).toBe('E_INPUT');
    expect(runCli(['models', 'remove', 'dir'], { cwd: dir }).code).toBe(0);
    expect(parseJson<{ models: unknown[] }>(runCli(['models', 'list', '--json'], { cwd: dir })).models).toHaveLength(0);
  });

  it('honours --registry and MODELPRINT_REGISTRY', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'elsewhere', 'reg.db');
    const r = runCli(['registry', 'info', '--json'], { cwd: dir, env: { MODELPRINT_REGISTRY: file } });
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ location: string; schema_version: number }>(r)).toMatchObject({ location: file, schema_version: 1 });
    const r2 = runCli(['registry', 'info', '--json', '--registry', path.join(dir, 'b.db')], { cwd: dir });
    expect(parseJson<{ location: string }>(r2).location).toBe(path.join(dir, 'b.db'));
  });

  it.each([
    ['a registry path that is a directory', (d: string) => ['registry', 'info', '--registry', d], 1, 'E_REGISTRY'],
    [
      'a corrupt registry.db',
      (d: string) => {
        fs.writeFileSync(path.join(d, 'bad.db'), 'this is not sqlite at all, just text'.repeat(50));
        return ['registry', 'info', '--registry', path.join(d, 'bad.db')];
      },
      1,
      'E_REGISTRY',
    ],
    ['an unknown flag', () => ['models', 'list', '--bogus'], 2, 'E_USAGE'],
    ['a missing argument', () => ['models', 'show'], 2, 'E_USAGE'],
    ['a missing model path', () => ['models', 'add', './does-not-exist'], 1, 'E_NOT_FOUND'],
  ])('gives a one-line error for %s', (_name, argsOf, code, errCode) => {
    const dir = tmpDir();
    const r = runCli(argsOf(dir), { cwd: dir });
    expect(r.code).toBe(code);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`[${errCode}]`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const j = runCli([...argsOf(dir), '--json'], { cwd: dir });
    expect(j.code).toBe(code);
    expect(parseJson<{ ok: boolean; error: { code: string } }>(j)).toMatchObject({ ok: false, error: { code: errCode } });
  });

  it('shows a stack trace for errors only with --verbose', () => {
    const dir = tmpDir();
    const r = runCli(['registry', 'info', '--registry', dir, '--verbose'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});
