import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError, messageOf } from '../errors.js';

/**
 * A failed write of `file` as a coded error: disk full / quota → E_IO saying so, no
 * permission or a read-only file system → E_PERMISSION, a folder where a file belongs →
 * E_USAGE; anything else E_IO. Never E_INTERNAL: the file system is not a bug.
 */
export function writeError(file: string, e: unknown): ModelprintError {
  if (e instanceof ModelprintError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ModelprintError('E_IO', `cannot write ${file}: the disk is full (${code})`, { subject: file, hint: 'free some space (or write to another file system) and run the command again; finished rows are kept', cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ModelprintError('E_PERMISSION', `cannot write ${file}: ${messageOf(e)}`, { subject: file, hint: 'write somewhere you have permission to', cause: e });
  }
  if (code === 'EISDIR') return new ModelprintError('E_USAGE', `${file} is a folder; a file was expected`, { subject: file, hint: 'pass a file path', cause: e });
  if (code === 'ENOTDIR') return new ModelprintError('E_USAGE', `cannot write ${file}: a part of its path is a file, not a folder`, { subject: file, cause: e });
  return new ModelprintError('E_IO', `cannot write ${file}: ${messageOf(e)}`, { subject: file, cause: e });
}

/**
 * Writes a file atomically: a temp file in the same folder, fsync, then rename. On any
 * failure (disk full, …) the temp file is removed and a coded error (writeError) thrown;
 * the old file, if any, is left as it was.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  let created = false;
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const fd = fs.openSync(tmp, 'wx');
    created = true;
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    if (created) fs.rmSync(tmp, { force: true });
    throw writeError(file, e);
  }
}
