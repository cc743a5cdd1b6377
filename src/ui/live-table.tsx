import React from 'react';
import { render, Box, Text } from 'ink';
import type { Phase, ProgressEvent, ProgressSink } from './progress.js';
import { renderTable } from './table.js';

/**
 * The live progress table on a TTY. It shows what runs now: one line for the model being
 * worked on (the one with the latest event), and one totals line into which finished,
 * reused and failed models collapse — so a long batch never scrolls the running model off
 * the screen. The overall ETA comes from the measured time of the models computed so far
 * (reused ones cost nothing and are left out), from the first finished model on. The
 * layout follows the terminal width. When the batch ends, a results table (models with a
 * score) or the totals stay on screen.
 */

interface Row {
  model: string;
  phase: Phase;
  done: number;
  total: number;
  started: number;
  /** Order of the row's latest event (the highest is the model being worked on). */
  seq: number;
  finished?: number;
  score?: number | null;
  code?: string;
  reused?: boolean;
  /** Measured seconds of a computed (not reused) model. */
  seconds?: number;
  /** A result row of the batch (model_done / model_failed), not e.g. the base. */
  counted?: boolean;
}

export interface LiveState {
  run: string;
  rows: Map<string, Row>;
  started: number;
  models: number;
  /** Probe prompts per model (total_prompts / models of the start event). */
  promptsPerModel: number;
  finished: boolean;
  seq: number;
  note?: string;
}

export function emptyState(now: number): LiveState {
  return { run: '', rows: new Map(), started: now, models: 0, promptsPerModel: 0, finished: false, seq: 0 };
}

/** Applies one progress event to the state (pure but for the mutation of `s`). */
export function applyEvent(s: LiveState, e: ProgressEvent, now: number): void {
  const row = (model: string): Row => {
    let r = s.rows.get(model);
    if (!r) {
      r = { model, phase: 'queued', done: 0, total: 0, started: now, seq: 0 };
      s.rows.set(model, r);
    }
    // Work on a model resumes after others ran (a matrix's second pass): time it afresh.
    if (r.seq !== s.seq) r.started = now;
    r.seq = ++s.seq;
    return r;
  };
  switch (e.event) {
    case 'start':
      s.run = e.run;
      s.models = e.models;
      s.promptsPerModel = e.models > 0 ? Math.round(e.total_prompts / e.models) : 0;
      s.started = now;
      break;
    case 'phase': {
      const r = row(e.model);
      r.phase = e.phase;
      r.done = e.done;
      r.total = e.total;
      if (e.phase === 'done') r.finished = now;
      break;
    }
    case 'model_done': {
      const r = row(e.model);
      r.phase = e.reused ? 'reused' : 'done';
      r.counted = true;
      r.reused = e.reused;
      r.score = e.score;
      r.seconds = e.reused ? undefined : e.seconds;
      r.done = r.total;
      r.finished = now;
      break;
    }
    case 'model_failed': {
      const r = row(e.model);
      r.phase = 'failed';
      r.counted = true;
      r.code = e.code;
      r.finished = now;
      break;
    }
    case 'interrupted':
      s.note = `interrupted (${e.signal}); resume: ${e.resume}`;
      break;
    case 'done':
      s.finished = true;
      break;
  }
}

export interface Totals {
  done: number;
  reused: number;
  failed: number;
  /** Models left (not done, reused or failed). */
  left: number;
  /** Seconds left, or null before the first computed model finished. */
  eta: number | null;
  running: Row | null;
  lastFailure: Row | null;
}

/**
 * Totals and the overall ETA: mean measured seconds of the computed models × models left,
 * less what the running model has already spent.
 */
export function totals(s: LiveState, now: number): Totals {
  const rows = [...s.rows.values()];
  const counted = rows.filter((r) => r.counted);
  const failedRows = counted.filter((r) => r.phase === 'failed');
  const reused = counted.filter((r) => r.phase === 'reused').length;
  const done = counted.length - failedRows.length - reused;
  const left = Math.max(0, s.models - counted.length);
  // The model worked on now: the unfinished row with the latest event, unless a model has
  // finished since (then the next one has not started yet, e.g. between a matrix's passes).
  const open = rows.filter((r) => r.finished === undefined);
  const latestOpen = open.reduce<Row | null>((a, r) => (!a || r.seq > a.seq ? r : a), null);
  const latestDone = rows.filter((r) => r.finished !== undefined).reduce((m, r) => Math.max(m, r.seq), 0);
  const running = s.finished || !latestOpen || latestOpen.seq < latestDone ? null : latestOpen;
  const measured = counted.filter((r) => r.seconds !== undefined).map((r) => r.seconds!);
  let eta: number | null = null;
  if (measured.length > 0) {
    const per = measured.reduce((a, b) => a + b, 0) / measured.length;
    const spent = running ? (now - running.started) / 1000 : 0;
    eta = left === 0 ? 0 : Math.max(0, per * left - Math.min(spent, per));
  }
  const lastFailure = failedRows.reduce<Row | null>((a, r) => (!a || r.seq > a.seq ? r : a), null);
  return { done, reused, failed: failedRows.length, left, eta, running, lastFailure };
}

export const secs = (s: number): string => (s >= 600 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`);
const fit = (x: string, n: number) => (x.length > n ? `${x.slice(0, Math.max(0, n - 1))}…` : x.padEnd(n));

/** Column layout for a terminal `columns` wide: the model column takes what is left. */
export function layout(columns: number): { model: number; progress: boolean; eta: boolean } {
  const wide = columns >= 100;
  // phase 8, prompts 11, elapsed 8 (+ progress 6, ETA 8 when wide), one space between columns.
  const fixed = 9 + 12 + 9 + (wide ? 7 + 9 : 0);
  return { model: Math.max(10, Math.min(60, columns - fixed - 1)), progress: wide, eta: wide };
}

/** The prompts column: prompts, never generation steps. */
function promptsCell(r: Row, perModel: number): string {
  if (r.phase === 'prompts') return `${r.done >= r.total && r.total > 0 ? perModel : 0}/${perModel}`;
  if (r.phase === 'sketch' || r.phase === 'scoring') return `${r.done}/${r.total}`;
  return '';
}

export function LiveTable({ s, columns, now }: { s: LiveState; columns: number; now: number }): React.ReactElement {
  const t = totals(s, now);
  const L = layout(columns);
  const r = t.running;
  const head = [fit('model', L.model), fit('phase', 8), ...(L.progress ? [fit('done', 6)] : []), fit('prompts', 11), fit('elapsed', 8), ...(L.eta ? [fit('ETA', 8)] : [])];
  let line: string | null = null;
  if (r) {
    const el = (now - r.started) / 1000;
    const frac = r.total > 0 ? r.done / r.total : 0;
    const left = el > 0 && frac > 0 && frac < 1 ? secs((el / frac) * (1 - frac)) : '-';
    line = [
      fit(r.model, L.model),
      fit(r.phase, 8),
      ...(L.progress ? [fit(r.total > 0 ? `${Math.round(frac * 100)}%` : '', 6)] : []),
      fit(promptsCell(r, s.promptsPerModel), 11),
      fit(secs(el), 8),
      ...(L.eta ? [fit(left, 8)] : []),
    ].join(' ');
  }
  const counts = `${t.done + t.reused}/${s.models} done${t.reused ? ` (${t.reused} reused)` : ''}, ${t.failed} failed`;
  const eta = s.finished ? '' : `, ETA ${t.eta === null ? '-' : secs(t.eta)}`;
  // Narrow terminals: the run's name on a line of its own, so the totals never get cut.
  const narrow = columns < 100;
  const total = `${s.run && !narrow ? `${s.run}: ` : ''}${counts}${eta}, elapsed ${secs((now - s.started) / 1000)}`;
  const fail = t.lastFailure ? `last failure: ${t.lastFailure.model} [${t.lastFailure.code ?? 'failed'}]` : null;
  return (
    <Box flexDirection="column" width={columns}>
      {narrow && s.run ? (
        <Text bold wrap="truncate">
          {s.run}
        </Text>
      ) : null}
      {line !== null || !s.finished ? (
        <Text bold wrap="truncate">
          {head.join(' ')}
        </Text>
      ) : null}
      {line !== null ? <Text wrap="truncate">{line}</Text> : !s.finished ? <Text dimColor wrap="truncate">(waiting)</Text> : null}
      <Text color={t.failed ? 'yellow' : s.finished ? 'green' : undefined} wrap="truncate">
        {total}
      </Text>
      {fail ? (
        <Text color="red" wrap="truncate">
          {fail}
        </Text>
      ) : null}
      {s.note ? <Text wrap="truncate">{s.note}</Text> : null}
    </Box>
  );
}

/** The results of the finished batch: models with a score (best first) and failures. */
export function resultsTable(s: LiveState, columns = 80): string | null {
  const rows = [...s.rows.values()].filter((r) => r.counted);
  if (!rows.some((r) => typeof r.score === 'number')) return null;
  rows.sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || a.seq - b.seq);
  return renderTable(
    ['model', 'score', 'status', 'seconds'],
    // Long model ids (paths) are cut from the left so the table fits the terminal.
    rows.map((r) => [r.model.length > columns - 40 ? `…${r.model.slice(-(Math.max(12, columns - 40) - 1))}` : r.model, typeof r.score === 'number' ? r.score.toFixed(4) : '-', r.phase === 'failed' ? r.code ?? 'failed' : r.reused ? 'reused' : 'ok', r.seconds === undefined ? '-' : r.seconds.toFixed(1)]),
  );
}

export interface InkSinkOptions {
  /** Where to draw (default stderr); tests pass a fake stream with `columns`. */
  stdout?: NodeJS.WriteStream;
  now?: () => number;
  /** Redraw period (ms); 0 = only on events. */
  tick?: number;
  /** ink's debug mode: every frame written whole (for tests reading frames). */
  debug?: boolean;
}

/** The live progress table (ink), drawn on stderr. */
export class InkSink implements ProgressSink {
  private readonly out: NodeJS.WriteStream;
  private readonly now: () => number;
  private s: LiveState;
  private app;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(opts: InkSinkOptions = {}) {
    this.out = opts.stdout ?? process.stderr;
    this.now = opts.now ?? Date.now;
    this.s = emptyState(this.now());
    this.app = render(this.view(), { stdout: this.out, patchConsole: false, exitOnCtrlC: false, debug: opts.debug ?? false });
    const tick = opts.tick ?? 500;
    if (tick > 0) this.timer = setInterval(() => this.redraw(), tick);
  }

  private view(): React.ReactElement {
    return <LiveTable s={this.s} columns={this.out.columns || 80} now={this.now()} />;
  }

  private redraw(): void {
    if (!this.closed) this.app.rerender(this.view());
  }

  emit(e: ProgressEvent): void {
    applyEvent(this.s, e, this.now());
    this.redraw();
  }

  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.s.finished = true;
    this.redraw();
    this.closed = true;
    this.app.unmount();
    const table = resultsTable(this.s, this.out.columns || 80);
    // A blank line keeps what the command prints next apart from the table.
    this.out.write(`\n${table ? `${table}\n` : ''}`);
  }
}
