import React from 'react';
import { render, Box, Text } from 'ink';
import type { Phase, ProgressEvent, ProgressSink } from './progress.js';

interface Row {
  model: string;
  phase: Phase;
  done: number;
  total: number;
  started: number;
  finished?: number;
  score?: number | null;
  code?: string;
  /** A result row of the batch (model_done / model_failed), not e.g. the base. */
  counted?: boolean;
}

interface State {
  run: string;
  rows: Map<string, Row>;
  started: number;
  models: number;
  finished: boolean;
  note?: string;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function Table({ s }: { s: State }): React.ReactElement {
  const rows = [...s.rows.values()];
  const done = rows.filter((r) => r.counted && r.phase !== 'failed').length;
  const failed = rows.filter((r) => r.counted && r.phase === 'failed').length;
  const elapsed = Date.now() - s.started;
  const finishedRows = rows.filter((r) => r.finished && r.counted);
  const perModel = finishedRows.length ? elapsed / finishedRows.length : 0;
  const eta = perModel && s.models > done + failed ? secs(perModel * (s.models - done - failed)) : '-';
  // Show the active rows and the last finished ones; a long batch does not scroll the screen away.
  const active = rows.filter((r) => !r.finished);
  const recent = rows.filter((r) => r.finished).slice(-8);
  const shown = [...recent, ...active].slice(-16);
  const pad = (x: string, n: number) => (x.length > n ? `${x.slice(0, n - 1)}…` : x.padEnd(n));
  return (
    <Box flexDirection="column">
      <Text bold>
        {pad('model', 34)} {pad('phase', 9)} {pad('prompts', 9)} {pad('elapsed', 8)} {pad('ETA', 8)} status
      </Text>
      {shown.map((r) => {
        const el = (r.finished ?? Date.now()) - r.started;
        const left = r.done > 0 && r.done < r.total ? secs((el / r.done) * (r.total - r.done)) : '-';
        const status =
          r.phase === 'failed' ? r.code ?? 'failed' : r.score !== undefined && r.score !== null ? r.score.toFixed(4) : r.phase === 'reused' ? 'reused' : '';
        return (
          <Text key={r.model} color={r.phase === 'failed' ? 'red' : r.finished ? 'green' : undefined}>
            {pad(r.model, 34)} {pad(r.phase, 9)} {pad(`${r.done}/${r.total}`, 9)} {pad(secs(el), 8)} {pad(left, 8)} {status}
          </Text>
        );
      })}
      <Text>
        {s.run}: {done}/{s.models} done, {failed} failed, elapsed {secs(elapsed)}, ETA {eta}
        {s.note ? `  ${s.note}` : ''}
      </Text>
    </Box>
  );
}

/** The live progress table (ink), drawn on stderr. */
export class InkSink implements ProgressSink {
  private s: State = { run: '', rows: new Map(), started: Date.now(), models: 0, finished: false };
  private app = render(<Table s={this.s} />, { stdout: process.stderr, patchConsole: false, exitOnCtrlC: false });
  private timer = setInterval(() => this.redraw(), 500);

  private redraw(): void {
    this.app.rerender(<Table s={{ ...this.s }} />);
  }

  emit(e: ProgressEvent): void {
    const row = (model: string): Row => {
      let r = this.s.rows.get(model);
      if (!r) {
        r = { model, phase: 'queued', done: 0, total: 0, started: Date.now() };
        this.s.rows.set(model, r);
      }
      return r;
    };
    switch (e.event) {
      case 'start':
        this.s.run = e.run;
        this.s.models = e.models;
        this.s.started = Date.now();
        break;
      case 'phase': {
        const r = row(e.model);
        r.phase = e.phase;
        r.done = e.done;
        r.total = e.total;
        if (e.phase === 'done') r.finished = Date.now();
        break;
      }
      case 'model_done': {
        const r = row(e.model);
        r.phase = e.reused ? 'reused' : 'done';
        r.counted = true;
        r.score = e.score;
        r.done = r.total;
        r.finished = Date.now();
        break;
      }
      case 'model_failed': {
        const r = row(e.model);
        r.phase = 'failed';
        r.counted = true;
        r.code = e.code;
        r.finished = Date.now();
        break;
      }
      case 'interrupted':
        this.s.note = `interrupted (${e.signal}); resume: ${e.resume}`;
        break;
      case 'done':
        this.s.finished = true;
        break;
    }
    this.redraw();
  }

  close(): void {
    clearInterval(this.timer);
    this.redraw();
    this.app.unmount();
  }
}
