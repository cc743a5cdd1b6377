import type { OpenOptions } from '../inference/session.js';
import type { RegistryWrite, RunContext } from '../methods/runner.js';
import type { BottomKParams } from '../methods/params.js';
import type { Registry } from '../registry/types.js';
import { makeProgress, type ProgressMode } from '../ui/progress.js';
import { StopSignal } from '../util/signals.js';
import { commandLine } from '../util/shell.js';
import { withOutputLocks, type LockTarget } from '../util/lock.js';

/**
 * Runs a batch with its progress display and Ctrl-C / SIGTERM handling: the body gets a
 * RunContext; an interrupted run reports how to resume and exits 130 / 143.
 */
export async function withRunContext<T>(
  opts: { params: BottomKParams; open: OpenOptions; registry: Registry | null; reuse: boolean; registryWrite?: RegistryWrite; progress: ProgressMode; quiet: boolean; warn?: (msg: string) => void; outputs?: LockTarget[] },
  body: (ctx: RunContext) => Promise<T>,
): Promise<T> {
  return withOutputLocks(opts.outputs ?? [], () => runWithContext(opts, body));
}

async function runWithContext<T>(opts: Parameters<typeof withRunContext>[0], body: (ctx: RunContext) => Promise<T>): Promise<T> {
  const stop = new StopSignal();
  const progress = await makeProgress(opts.progress, opts.quiet);
  const ctx: RunContext = {
    params: opts.params,
    open: opts.open,
    registry: opts.registry,
    reuse: opts.reuse && opts.registryWrite !== 'off',
    registryWrite: opts.registryWrite,
    warn: opts.warn,
    progress,
    stop,
    resumeHint: commandLine(),
  };
  try {
    return await body(ctx);
  } catch (e) {
    if (stop.signalName) {
      progress.emit({ event: 'interrupted', signal: stop.signalName, resume: ctx.resumeHint });
      progress.close();
      stop.check(ctx.resumeHint);
    }
    throw e;
  } finally {
    progress.close();
    stop.dispose();
  }
}
