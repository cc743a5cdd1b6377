import path from 'node:path';
import { ModelprintError } from '../errors.js';
import { SqliteRegistry } from './sqlite.js';
import type { Registry } from './types.js';

export const DEFAULT_REGISTRY = path.join('.modelprint', 'registry.db');

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** Opens the registry named by a path or postgres:// URL (default ./.modelprint/registry.db). */
export async function openRegistry(spec?: string): Promise<Registry> {
  const target = spec && spec.trim() !== '' ? spec.trim() : DEFAULT_REGISTRY;
  if (isPostgresUrl(target)) {
    const { PostgresRegistry } = await import('./postgres.js');
    return PostgresRegistry.open(target);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    throw new ModelprintError('E_CONFIG', `unsupported registry URL ${target}`, {
      subject: '--registry',
      hint: 'use a SQLite file path or a postgres:// URL',
    });
  }
  return SqliteRegistry.open(target);
}

export type { Registry } from './types.js';
