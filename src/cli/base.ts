import { Command, Flags, Interfaces } from '@oclif/core';
import { EXIT, ModelprintError, isModelprintError, messageOf } from '../errors.js';
import { Logger } from './logger.js';
import { c } from '../ui/colour.js';
import type { Registry } from '../registry/types.js';
import { openRegistry } from '../registry/index.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * Every modelprint command extends this: global flags, logging to stderr, one JSON
 * document on stdout with --json, stable error codes and exit codes.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    quiet: Flags.boolean({ char: 'q', description: 'Print only results and errors.', helpGroup: 'GLOBAL' }),
    verbose: Flags.boolean({ char: 'v', description: 'Print debug logs and stack traces.', helpGroup: 'GLOBAL' }),
    registry: Flags.string({
      description: 'Registry: a SQLite file path or a postgres:// URL. [default: ./.modelprint/registry.db]',
      env: 'MODELPRINT_REGISTRY',
      helpGroup: 'GLOBAL',
    }),
  };

  /**
   * `read`: the command only reads the registry, so a SQLite registry that does not exist is
   * an empty one and nothing (file or folder) is created for it.
   */
  static registryAccess: 'read' | 'write' = 'write';

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  /** All positional arguments (for commands with strict = false). */
  protected positional: string[] = [];
  protected logger = new Logger();
  private registryHandle?: Registry;

  public override async init(): Promise<void> {
    await super.init();
    // Verbose before parsing, so parse errors can show a stack trace too.
    if (this.argv.includes('--verbose') || this.argv.includes('-v')) this.logger.level = 'verbose';
    const { args, flags, argv } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    this.positional = argv.map(String);
    this.logger.level = this.flags.verbose ? 'verbose' : this.flags.quiet || this.jsonEnabled() ? 'quiet' : 'normal';
  }

  /** The registry named by --registry / MODELPRINT_REGISTRY, opened on first use. */
  protected async registry(): Promise<Registry> {
    if (!this.registryHandle) {
      this.registryHandle = await openRegistry(this.flags.registry, { create: (this.ctor as typeof BaseCommand).registryAccess === 'write' });
    }
    return this.registryHandle;
  }

  /** Human output: to stdout unless --json (then results go in the JSON document). */
  protected out(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const e = toModelprintError(err);
    process.exitCode = e.exitCode;
    // A usage error stops parsing half-way; don't let oclif warn that we never parsed.
    (this as unknown as { parsed: boolean }).parsed = true;
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify({ ok: false, error: e.toJSON() })}\n`);
    }
    const hint = e.hint ? ` (hint: ${e.hint})` : '';
    process.stderr.write(`${c.red('error', process.stderr)} [${e.code}] ${e.message}${hint}\n`);
    if (this.logger.level === 'verbose') {
      const stack = (e.cause instanceof Error ? e.cause.stack : undefined) ?? e.stack;
      if (stack) process.stderr.write(`${stack}\n`);
    }
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    if (this.registryHandle) await this.registryHandle.close();
    return super.finally(err);
  }

  /** Sets exit code 3 (partial success) when some items failed. */
  protected partial(failed: number): void {
    if (failed > 0 && (process.exitCode ?? 0) === 0) process.exitCode = EXIT.partial;
  }
}

/** Maps anything thrown (oclif parse errors included) to a ModelprintError. */
export function toModelprintError(err: unknown): ModelprintError {
  if (isModelprintError(err)) return err;
  const anyErr = err as { parse?: unknown; oclif?: { exit?: number }; code?: string; message?: string };
  if (anyErr && (anyErr.parse !== undefined || anyErr.oclif?.exit === 2)) {
    const msg = (anyErr.message ?? 'invalid usage')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('See more help'))
      .join(' ')
      .replace(/^Error:\s*/, '');
    return new ModelprintError('E_USAGE', msg, {
      hint: 'see `modelprint <command> --help`',
      exitCode: EXIT.usage,
      cause: err,
    });
  }
  if (anyErr?.code === 'EEXIT') {
    return new ModelprintError('E_INTERNAL', 'exit', { exitCode: anyErr.oclif?.exit ?? 1, cause: err });
  }
  return new ModelprintError('E_INTERNAL', messageOf(err), {
    hint: 'this is a bug in modelprint; re-run with --verbose and report the stack trace',
    cause: err,
  });
}
