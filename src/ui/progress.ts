/**
 * Progress of a batch over models. One interface, three renderings: a live ink table
 * on a TTY, one JSON event per line (stderr) for batch jobs, or plain lines.
 */
export type Phase = 'queued' | 'download' | 'loading' | 'prompts' | 'sketch' | 'scoring' | 'reused' | 'done' | 'failed';

export type ProgressEvent =
  | { event: 'start'; run: string; models: number; total_prompts: number; time: string }
  | { event: 'phase'; model: string; phase: Phase; done: number; total: number; time: string; onnx_file?: string | null; onnx_variant?: string | null }
  | { event: 'model_done'; model: string; score: number | null; reused: boolean; seconds: number; time: string }
  | { event: 'model_failed'; model: string; code: string; message: string; time: string }
  | { event: 'done'; ok: number; failed: number; skipped: number; seconds: number; time: string }
  | { event: 'interrupted'; signal: string; resume: string; time: string };

export interface ProgressSink {
  emit(e: ProgressEvent): void;
  close(): void;
}

type Without<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type ProgressInput = Without<ProgressEvent, 'time'>;

export class Progress {
  private closed = false;
  constructor(private readonly sinks: ProgressSink[]) {}
  emit(e: ProgressInput): void {
    const ev = { ...e, time: new Date().toISOString() } as ProgressEvent;
    for (const s of this.sinks) s.emit(ev);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sinks) s.close();
  }
}

/** A heartbeat line of the JSON-lines progress (written by the sink, not by emitters). */
export interface HeartbeatEvent {
  event: 'heartbeat';
  time: string;
  elapsed_s: number;
  models_done: number;
  models_failed: number;
  /** The model being worked on and its phase (null between models). */
  model: string | null;
  phase: Phase | null;
  done: number;
  total: number;
}

/** Default heartbeat interval of JSON-lines progress, seconds (MODELPRINT_HEARTBEAT overrides; 0 = off). */
export const DEFAULT_HEARTBEAT_S = 60;

export function heartbeatFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.MODELPRINT_HEARTBEAT;
  if (v === undefined || v.trim() === '') return DEFAULT_HEARTBEAT_S;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : DEFAULT_HEARTBEAT_S;
}

/**
 * JSON lines for batch logs: one line per model and phase, per finished or failed model,
 * and per run start / end; per-step progress (prompts done / total) is not written, it
 * updates the heartbeat instead, a line every `heartbeatSeconds` saying where the run is.
 * n models write O(n) lines however many prompts or steps each has.
 */
export class JsonlSink implements ProgressSink {
  private readonly lastPhase = new Map<string, Phase>();
  private current: { model: string; phase: Phase; done: number; total: number } | null = null;
  private modelsDone = 0;
  private modelsFailed = 0;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    heartbeatSeconds: number = heartbeatFromEnv(),
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {
    if (heartbeatSeconds > 0) {
      this.timer = setInterval(() => this.heartbeat(), heartbeatSeconds * 1000);
      this.timer.unref();
    }
  }

  emit(e: ProgressEvent): void {
    if (e.event === 'phase') {
      this.current = { model: e.model, phase: e.phase, done: e.done, total: e.total };
      if (this.lastPhase.get(e.model) === e.phase) return; // a step inside the phase
      this.lastPhase.set(e.model, e.phase);
    } else if (e.event === 'model_done' || e.event === 'model_failed') {
      if (e.event === 'model_done') this.modelsDone++;
      else this.modelsFailed++;
      this.lastPhase.delete(e.model);
      if (this.current?.model === e.model) this.current = null;
    }
    this.write(`${JSON.stringify(e)}\n`);
  }

  heartbeat(): void {
    const c = this.current;
    const hb: HeartbeatEvent = {
      event: 'heartbeat',
      time: new Date().toISOString(),
      elapsed_s: Math.round((Date.now() - this.started) / 100) / 10,
      models_done: this.modelsDone,
      models_failed: this.modelsFailed,
      model: c?.model ?? null,
      phase: c?.phase ?? null,
      done: c?.done ?? 0,
      total: c?.total ?? 0,
    };
    this.write(`${JSON.stringify(hb)}\n`);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export class PlainSink implements ProgressSink {
  emit(e: ProgressEvent): void {
    switch (e.event) {
      case 'start':
        process.stderr.write(`${e.run}: ${e.models} models\n`);
        break;
      case 'model_done':
        process.stderr.write(`  done   ${e.model}${e.score === null ? '' : ` ${e.score.toFixed(4)}`}${e.reused ? ' (reused)' : ''} ${e.seconds.toFixed(1)}s\n`);
        break;
      case 'model_failed':
        process.stderr.write(`  FAILED ${e.model} [${e.code}] ${e.message}\n`);
        break;
      case 'done':
        process.stderr.write(`finished: ${e.ok} ok, ${e.failed} failed, ${e.skipped} already done, ${e.seconds.toFixed(1)}s\n`);
        break;
      case 'interrupted':
        process.stderr.write(`interrupted by ${e.signal}; resume with: ${e.resume}\n`);
        break;
      default:
        break;
    }
  }
  close(): void {}
}

export type ProgressMode = 'auto' | 'tty' | 'jsonl' | 'plain' | 'none';

/**
 * auto: the live table when stderr is a TTY, else JSON lines (with a heartbeat every
 * `heartbeatSeconds`, default MODELPRINT_HEARTBEAT or 60 s).
 */
export async function makeProgress(mode: ProgressMode, quiet: boolean, opts: { heartbeatSeconds?: number } = {}): Promise<Progress> {
  if (mode === 'none' || (quiet && mode === 'auto')) return new Progress([]);
  const tty = Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb';
  if (mode === 'jsonl' || (mode === 'auto' && !tty)) return new Progress([new JsonlSink(opts.heartbeatSeconds ?? heartbeatFromEnv())]);
  if (mode === 'plain') return new Progress([new PlainSink()]);
  const { InkSink } = await import('./live-table.js');
  return new Progress([new InkSink()]);
}
