/**
 * One error type for everything modelprint reports to a user. Each has a stable code,
 * a message that names the file, field or model, and a hint saying what to do.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, partial: 3, sigint: 130, sigterm: 143 } as const;

export type ErrorCode =
  | 'E_USAGE'
  | 'E_CONFIG'
  | 'E_INPUT'
  | 'E_NOT_FOUND'
  | 'E_REGISTRY'
  | 'E_PERMISSION'
  | 'E_MODEL_FORMAT'
  | 'E_MODEL_LOAD'
  | 'E_TOKENIZER'
  | 'E_INFERENCE'
  | 'E_DEVICE'
  | 'E_IO'
  | 'E_LOCKED'
  | 'E_INTERRUPTED'
  | 'E_INTERNAL';

export interface ErrorDetails {
  hint?: string;
  /** The file, field or model the error is about. */
  subject?: string;
  exitCode?: number;
  cause?: unknown;
}

export class ModelprintError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly subject?: string;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ModelprintError';
    this.code = code;
    this.hint = details.hint;
    this.subject = details.subject;
    this.exitCode = details.exitCode ?? (code === 'E_USAGE' ? EXIT.usage : EXIT.failure);
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.subject ? { subject: this.subject } : {}),
      ...(this.hint ? { hint: this.hint } : {}),
    };
  }
}

export function isModelprintError(e: unknown): e is ModelprintError {
  return e instanceof ModelprintError;
}

/** A short message of any thrown value. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
