import { ModelprintError } from '../errors.js';
import type { Registry } from './types.js';

/** PostgreSQL backend of the registry (shared registry for teams and clusters). */
export class PostgresRegistry {
  static async open(url: string): Promise<Registry> {
    const redacted = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    throw new ModelprintError('E_CONFIG', `the PostgreSQL registry backend is not available in this build (${redacted})`, {
      subject: '--registry',
      hint: 'use a SQLite registry path for now',
    });
  }
}
