import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InkSink } from '../src/ui/live-table.js';
import { PlainSink, type ProgressEvent } from '../src/ui/progress.js';

/** A fake terminal `columns` wide that keeps every frame ink writes (debug mode: whole frames). */
class FakeTerminal extends EventEmitter {
  frames: string[] = [];
  rows = 40;
  isTTY = true;
  constructor(public columns: number) {
    super();
  }
  write(s: string): boolean {
    this.frames.push(stripVTControlCharacters(s));
    return true;
  }
}

/** Drives an InkSink with a fake clock; `at(t)` moves the clock (seconds). */
function harness(columns: number) {
  const term = new FakeTerminal(columns);
  let t = 0;
  const sink = new InkSink({ stdout: term as unknown as NodeJS.WriteStream, now: () => t * 1000, tick: 0, debug: true });
  const time = new Date(0).toISOString();
  return {
    term,
    at: (s: number) => {
      t = s;
    },
    emit: (e: Record<string, unknown>) => sink.emit({ ...e, time } as ProgressEvent),
    frame: () => term.frames[term.frames.length - 1],
    close: () => sink.close(),
  };
}

const ids = Array.from({ length: 16 }, (_, i) => `org/model-${String(i).padStart(2, '0')}-with-a-rather-long-hub-name`);

/** A 16-model matrix run (4 prompts per model: 56 generation steps each), as runMatrix emits it. */
function matrixPass1(h: ReturnType<typeof harness>): void {
  h.emit({ event: 'start', run: 'matrix of 16 models', models: 16, total_prompts: 64 });
  let t = 0;
  for (const id of ids) {
    h.emit({ event: 'phase', model: id, phase: 'loading', done: 0, total: 0 });
    for (const step of [1, 28, 56]) {
      h.at((t += 1));
      h.emit({ event: 'phase', model: id, phase: 'prompts', done: step, total: 56 });
    }
  }
  h.at(100);
}

for (const columns of [70, 160]) {
  describe(`live table at ${columns} columns`, () => {
    it('shows the running model, not the frozen rows of the first pass; prompts count prompts', () => {
      const h = harness(columns);
      h.emit({ event: 'start', run: 'matrix of 16 models', models: 16, total_prompts: 64 });
      h.emit({ event: 'phase', model: ids[0], phase: 'prompts', done: 28, total: 56 });
      expect(h.frame()).toContain('0/4');
      expect(h.frame()).not.toContain('/56');
      expect(h.frame()).toContain('ETA -');
      matrixPass1(h);
      // Pass 2, model 0: the only model row is the running one.
      h.emit({ event: 'phase', model: ids[0], phase: 'loading', done: 0, total: 0 });
      h.at(101);
      h.emit({ event: 'phase', model: ids[0], phase: 'sketch', done: 16, total: 64 });
      const f = h.frame();
      const modelLines = f.split('\n').filter((l) => l.startsWith('org/model-'));
      expect(modelLines).toHaveLength(1);
      expect(modelLines[0]).toMatch(/^org\/model-00/);
      expect(modelLines[0]).toContain('16/64');
      expect(modelLines[0]).toContain('1.0s'); // timed from the start of its second pass, not from pass 1
      for (const line of f.split('\n')) expect(line.length, line).toBeLessThanOrEqual(columns);
      h.close();
    });

    it('collapses finished rows into the totals line; ETA from measured per-model cost, reused rows excluded', () => {
      const h = harness(columns);
      matrixPass1(h);
      // A resumed run: 10 models reused at once, then computed ones taking 10 s each.
      for (const id of ids.slice(0, 10)) h.emit({ event: 'model_done', model: id, score: null, reused: true, seconds: 0 });
      expect(h.frame()).toContain('10/16 done (10 reused)');
      expect(h.frame()).toContain('ETA -'); // nothing measured yet: no guess
      let t = 100;
      h.emit({ event: 'phase', model: ids[10], phase: 'loading', done: 0, total: 0 });
      h.at((t += 10));
      h.emit({ event: 'model_done', model: ids[10], score: null, reused: false, seconds: 10 });
      h.emit({ event: 'phase', model: ids[11], phase: 'loading', done: 0, total: 0 });
      // 5 models left at 10 s each.
      expect(h.frame()).toContain('11/16 done (10 reused), 0 failed');
      expect(h.frame()).toMatch(/ETA 50\.0s/);
      h.at((t += 4));
      h.emit({ event: 'phase', model: ids[11], phase: 'sketch', done: 32, total: 64 });
      expect(h.frame()).toMatch(/ETA 46\.0s/); // less what the running model already spent
      h.at((t += 6));
      h.emit({ event: 'model_failed', model: ids[11], code: 'corrupt_onnx', message: 'bad' });
      expect(h.frame()).toContain('1 failed');
      expect(h.frame()).toContain(`last failure: ${ids[11].slice(0, 20)}`);
      const rows = h.frame().split('\n').filter((l) => l.startsWith('org/model-'));
      expect(rows).toHaveLength(0); // finished and failed rows are in the totals, not on screen
      for (const line of h.frame().split('\n')) expect(line.length, line).toBeLessThanOrEqual(columns);
      h.close();
    });

    it('leaves a results table (or the totals) on screen at the end, apart from what follows', () => {
      const h = harness(columns);
      h.emit({ event: 'start', run: 'lineage vs base', models: 3, total_prompts: 12 });
      h.emit({ event: 'phase', model: 'base', phase: 'done', done: 4, total: 4 });
      h.emit({ event: 'model_done', model: 'a-int8', score: 0.91, reused: false, seconds: 2 });
      h.emit({ event: 'model_done', model: 'b-other', score: 0.01, reused: false, seconds: 2 });
      h.emit({ event: 'model_failed', model: 'c-broken', code: 'missing_tokenizer', message: 'x' });
      h.emit({ event: 'done', ok: 2, failed: 1, skipped: 0, seconds: 4 });
      h.close();
      const all = h.term.frames.join('');
      expect(all).toMatch(/lineage vs base(: |\n)2\/3 done, 1 failed/);
      const tail = h.term.frames[h.term.frames.length - 1];
      expect(tail).toMatch(/a-int8\s+│ 0\.9100 │ ok/);
      expect(tail).toMatch(/c-broken\s+│ -\s+│ missing_tokenizer/);
      expect(tail.indexOf('a-int8')).toBeLessThan(tail.indexOf('b-other'));
      expect(tail.startsWith('\n')).toBe(true); // apart from the last live frame
    });
  });
}

describe('batch forms', () => {
  it('--progress plain stays one line per finished model', () => {
    const lines: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (lines.push(s), true)) as typeof process.stderr.write;
    try {
      const p = new PlainSink();
      const time = new Date(0).toISOString();
      p.emit({ event: 'start', run: 'r', models: 1, total_prompts: 4, time });
      p.emit({ event: 'model_done', model: 'm', score: 0.5, reused: false, seconds: 1, time });
    } finally {
      process.stderr.write = orig;
    }
    expect(lines).toEqual(['r: 1 models\n', '  done   m 0.5000 1.0s\n']);
  });
});

describe('results table width', () => {
  it('fits long model paths into 70 columns', () => {
    const h = harness(70);
    h.emit({ event: 'start', run: 'lineage', models: 1, total_prompts: 2 });
    h.emit({ event: 'model_done', model: '/tmp/some/very/long/path/to/a/zoo/folder/alpha-int8-derivative', score: 0.5, reused: false, seconds: 1 });
    h.close();
    const tail = h.term.frames[h.term.frames.length - 1];
    expect(tail).toContain('alpha-int8-derivative');
    for (const line of tail.split('\n')) expect(line.length, line).toBeLessThanOrEqual(70);
  });
});
