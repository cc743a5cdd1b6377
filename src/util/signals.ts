import { EXIT, ModelprintError } from '../errors.js';

/**
 * Ctrl-C / SIGTERM: the first signal lets the batch finish the row it is writing and
 * stop (exit 130 / 143); a second one exits at once.
 */
export class StopSignal {
  readonly controller = new AbortController();
  signalName: 'SIGINT' | 'SIGTERM' | null = null;
  private handlers: Array<[NodeJS.Signals, () => void]> = [];

  constructor() {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const h = () => {
        if (this.signalName) process.exit(sig === 'SIGINT' ? EXIT.sigint : EXIT.sigterm);
        this.signalName = sig;
        this.controller.abort();
      };
      process.on(sig, h);
      this.handlers.push([sig, h]);
    }
  }

  get stopped(): boolean {
    return this.controller.signal.aborted;
  }

  /** Throws E_INTERRUPTED (exit 130/143) if a signal came. */
  check(resumeHint: string): void {
    if (!this.signalName) return;
    throw new ModelprintError('E_INTERRUPTED', `interrupted by ${this.signalName}; finished rows are saved`, {
      hint: `resume with: ${resumeHint}`,
      exitCode: this.signalName === 'SIGINT' ? EXIT.sigint : EXIT.sigterm,
    });
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }
}
