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

export class JsonlSink implements ProgressSink {
  emit(e: ProgressEvent): void {
    // Phase events are frequent; keep them but they are one short line each.
    process.stderr.write(`${JSON.stringify(e)}\n`);
  }
  close(): void {}
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

/** auto: the live table when stderr is a TTY, else JSON lines. */
export async function makeProgress(mode: ProgressMode, quiet: boolean): Promise<Progress> {
  if (mode === 'none' || (quiet && mode === 'auto')) return new Progress([]);
  const tty = Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb';
  if (mode === 'jsonl' || (mode === 'auto' && !tty)) return new Progress([new JsonlSink()]);
  if (mode === 'plain') return new Progress([new PlainSink()]);
  const { InkSink } = await import('./live-table.js');
  return new Progress([new InkSink()]);
}
