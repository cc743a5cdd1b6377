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

  /**
   * The registry named by --registry / MODELPRINT_REGISTRY, opened on first use. Only
   * commands that spread `registryFlag` into their flags have --registry.
   */
  protected async registry(): Promise<Registry> {
    if (!this.registryHandle) {
      this.registryHandle = await openRegistry(this.registrySpec(), { create: (this.ctor as typeof BaseCommand).registryAccess === 'write' });
    }
    return this.registryHandle;
  }

  /** The --registry value (or MODELPRINT_REGISTRY), if this command has the flag. */
  protected registrySpec(): string | undefined {
    return (this.flags as { registry?: string }).registry;
  }

  /** With --json, one document with snake_case keys (see snakeCaseKeys). */
  public override toSuccessJson(result: unknown): unknown {
    return snakeCaseKeys(result);
  }

  /** Warnings (oclif's deprecation notices included) in modelprint's format, on stderr, even with --json. */
  public override warn(input: string | Error): string | Error {
    this.logger.warn(typeof input === 'string' ? input : input.message);
    return input;
  }

  /** Human output: to stdout unless --json (then results go in the JSON document). */
  protected out(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const e = toModelprintError(err, this.id);
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

/** The `--help` line of a command id ("analyze:roc" → "modelprint analyze roc --help"). */
export function helpCommand(id?: string): string {
  return id ? `modelprint ${id.split(':').join(' ')} --help` : 'modelprint help';
}

/** Maps anything thrown (oclif parse errors included) to a ModelprintError. */
export function toModelprintError(err: unknown, commandId?: string): ModelprintError {
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
      hint: `see \`${helpCommand(commandId)}\``,
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

/**
 * The --registry flag, for the commands that open the registry (spread into their flags).
 * Commands that never touch the registry do not list it.
 */
export const registryFlag = {
  registry: Flags.string({
    description: 'Registry: a SQLite file path or a postgres:// URL. [default: ./.modelprint/registry.db]',
    env: 'MODELPRINT_REGISTRY',
    helpGroup: 'GLOBAL',
  }),
};

const CAMEL = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;

/**
 * Deep copy with camelCase keys (registry records: modelType, schemaVersion, …) renamed
 * to snake_case, so every --json document uses one key style. Only keys that are plain
 * camelCase identifiers change; keys holding data (model ids such as "Qwen/Qwen2.5-0.5B"
 * or "alpha-base", file names) never have that shape and are kept as they are.
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof Date) return value;
  const toJSON = (value as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === 'function') return snakeCaseKeys(toJSON.call(value));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[CAMEL.test(k) ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k] = snakeCaseKeys(v);
  }
  return out;
}
