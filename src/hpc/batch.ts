/**
 * Shared flags and run wrapper of the HPC batch commands (probes make, sketch): the
 * progress display with its heartbeat, and Ctrl-C / SIGTERM that finish the current
 * model, keep what is done and exit 130 / 143 (how a Slurm task near its limit stops).
 */
import { Flags } from '@oclif/core';
import { makeProgress, type Progress, type ProgressMode } from '../ui/progress.js';
import { StopSignal } from '../util/signals.js';

export const batchFlags = {
  device: Flags.string({ description: 'Inference device: cuda fails if absent, auto falls back to the CPU.', options: ['cpu', 'cuda', 'auto'], default: 'auto' }),
  threads: Flags.integer({ description: 'ONNX Runtime threads per model (0 = all cores).', default: 0, min: 0 }),
  'batch-size': Flags.integer({ description: 'Prompts per forward pass. 0 (default) = auto: prompts of equal token length share a pass (no padding), up to 2048 tokens and 64 MiB of logits a pass; N ≥ 1 = up to N prompts a pass, left-padded to the longest.', default: 0, min: 0 }),
  progress: Flags.string({ description: 'Progress display: a live table on a TTY, JSON lines otherwise.', options: ['auto', 'tty', 'jsonl', 'plain', 'none'], default: 'auto' }),
  heartbeat: Flags.integer({ description: 'Seconds between heartbeat lines of --progress jsonl (0: none). [default: MODELPRINT_HEARTBEAT or 60]', min: 0 }),
};

export interface BatchContext {
  progress: Progress;
  stop: StopSignal;
  /** The command line that resumes the run. */
  resume: string;
  check: () => void;
}

export async function withBatch<T>(opts: { progress: string; quiet: boolean; heartbeat?: number }, body: (ctx: BatchContext) => Promise<T>): Promise<T> {
  const stop = new StopSignal();
  const progress = await makeProgress(opts.progress as ProgressMode, opts.quiet, { heartbeatSeconds: opts.heartbeat });
  const resume = `modelprint ${process.argv.slice(2).join(' ')}`;
  const ctx: BatchContext = { progress, stop, resume, check: () => stop.check(resume) };
  try {
    return await body(ctx);
  } catch (e) {
    if (stop.signalName) {
      progress.emit({ event: 'interrupted', signal: stop.signalName, resume });
      progress.close();
      stop.check(resume);
    }
    throw e;
  } finally {
    progress.close();
    stop.dispose();
  }
}
