import path from 'node:path';
import { ModelprintError } from '../errors.js';
import { SqliteRegistry } from './sqlite.js';
import type { Registry } from './types.js';
import { isPostgresUrl, looksLikeUrl, redactUrl } from './url.js';

export const DEFAULT_REGISTRY = path.join('.modelprint', 'registry.db');

export { isPostgresUrl };

/**
 * Opens the registry named by a path or postgres:// URL (default ./.modelprint/registry.db).
 * With `create: false` (commands that only read) a SQLite file that does not exist is opened as
 * an empty registry, and no file or folder is created.
 */
export async function openRegistry(spec?: string, opts: { create?: boolean } = {}): Promise<Registry> {
  const target = spec && spec.trim() !== '' ? spec.trim() : DEFAULT_REGISTRY;
  if (isPostgresUrl(target)) {
    const { PostgresRegistry } = await import('./postgres.js');
    return PostgresRegistry.open(target);
  }
  if (looksLikeUrl(target)) {
    // Not a path (a mistyped postgres URL would otherwise become folders named with its password).
    const shown = redactUrl(target);
    throw new ModelprintError('E_CONFIG', `unsupported registry URL ${shown}`, {
      subject: '--registry',
      hint: /^postgres(ql)?:/i.test(target) ? 'a PostgreSQL URL starts with postgres:// (two slashes)' : 'use a SQLite file path or a postgres:// URL',
    });
  }
  return SqliteRegistry.open(target, opts);
}

export type { Registry } from './types.js';
