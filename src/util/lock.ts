/**
 * Exclusive locks on outputs that a run appends to or resumes (a lineage CSV and its
 * `.params.json` sidecar, a matrix or experiment folder, a similarity output): two runs on
 * one output would both append and leave duplicate rows. The lock is a file next
 * to the output (`<file>.lock`, or `.modelprint.lock` inside an output folder), created
 * atomically (a hard link of a private file, failing when it exists) and holding the
 * holder's pid, host, start time and command. A second run fails fast with E_LOCKED naming
 * the holder and the lock file. A lock whose holder is gone (same host, pid not
 * alive: a run killed with kill -9) is stale and taken over. Locks are removed when the
 * holder finishes, fails, or exits on a signal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelprintError, messageOf } from '../errors.js';
import { writeError } from './atomic.js';
import { commandLine } from './shell.js';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

export interface OutputLock {
  file: string;
  release(): void;
}

/** What is to be locked: a file output (`-o out.csv`) or an output folder (`--output-dir`). */
export interface LockTarget {
  path: string;
  kind: 'file' | 'dir';
  /** The flag that named it (for errors). */
  flag?: string;
}

const held = new Set<string>();
let exitHook = false;

function releaseAllSync(): void {
  for (const f of held) {
    try {
      fs.unlinkSync(f);
    } catch {
      // already gone
    }
  }
  held.clear();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): { info: LockInfo | null; text: string; ageMs: number } | null {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const ageMs = Date.now() - fs.statSync(file).mtimeMs;
    try {
      const j = JSON.parse(text) as LockInfo;
      return { info: Number.isInteger(j.pid) && typeof j.host === 'string' ? j : null, text, ageMs };
    } catch {
      return { info: null, text, ageMs };
    }
  } catch {
    return null; // gone meanwhile
  }
}

/** Checks the output's type (a file output must not be a folder and vice versa) and returns the lock file path. */
function lockFileOf(t: LockTarget): string {
  const abs = path.resolve(t.path);
  const flag = t.flag ? `${t.flag} ` : '';
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new ModelprintError('E_IO', `cannot use ${flag}${t.path}: ${messageOf(e)}`, { subject: t.path, cause: e });
  }
  if (t.kind === 'file') {
    if (st?.isDirectory()) throw new ModelprintError('E_USAGE', `${flag}${t.path} is a folder; it must name a file`, { subject: t.path, hint: `pass a file path, e.g. ${path.join(t.path, 'results.csv')}` });
    if (st && !st.isFile()) throw new ModelprintError('E_USAGE', `${flag}${t.path} is not a regular file`, { subject: t.path, hint: 'pass a regular file path' });
    mkdirOrThrow(path.dirname(abs), t);
    return `${abs}.lock`;
  }
  if (st && !st.isDirectory()) throw new ModelprintError('E_USAGE', `${flag}${t.path} is a file; it must name a folder`, { subject: t.path, hint: 'pass a folder (it is created when missing)' });
  mkdirOrThrow(abs, t);
  return path.join(abs, '.modelprint.lock');
}

function mkdirOrThrow(dir: string, t: LockTarget): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const flag = t.flag ? `${t.flag} ` : '';
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      throw new ModelprintError('E_USAGE', `cannot create the folder of ${flag}${t.path}: a part of ${dir} is a file`, { subject: t.path, cause: e });
    }
    throw new ModelprintError(code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'E_PERMISSION' : 'E_IO', `cannot create ${dir} for ${flag}${t.path}: ${messageOf(e)}`, { subject: t.path, cause: e });
  }
}

/**
 * Takes the lock of one output, or throws E_LOCKED naming the holder. A lock left by a
 * dead process on this host (or an unreadable one older than 10 s) is taken over.
 */
export function lockOutput(t: LockTarget): OutputLock {
  const file = lockFileOf(t);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: commandLine().slice(0, 500) };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      // The lock appears with its content or not at all: written to a private file, then
      // hard-linked into place (link fails with EEXIST when the lock is held, like O_EXCL).
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(tmp, `${JSON.stringify(me)}\n`, { flag: 'w', mode: 0o644 });
        try {
          fs.linkSync(tmp, file);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
          // A file system without hard links: O_EXCL (a reader may briefly see an empty lock).
          fs.writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx', mode: 0o644 });
        }
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      held.add(file);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', releaseAllSync);
      }
      return {
        file,
        release: () => {
          if (!held.delete(file)) return;
          const cur = readLock(file);
          if (cur?.info?.pid === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw writeError(file, e);
    }
    const cur = readLock(file);
    if (!cur) continue; // released meanwhile: try again
    const { info } = cur;
    const stale = info ? info.host === os.hostname() && !alive(info.pid) : cur.ageMs > 10_000;
    if (!stale) {
      const who = info ? `process ${info.pid} on ${info.host} (started ${info.started}: ${info.command})` : 'another process';
      throw new ModelprintError('E_LOCKED', `${t.path} is in use by ${who}; lock file ${file}`, {
        subject: file,
        hint: `wait for that run to finish or write to another output; if no such run exists any more (its pid reused, or it ran on another host), remove ${file}`,
      });
    }
    // Stale (its holder died): take it over, unless it changed meanwhile.
    if (readLock(file)?.text === cur.text) fs.rmSync(file, { force: true });
  }
  throw new ModelprintError('E_LOCKED', `could not take the lock ${file} (it keeps changing hands)`, { subject: file, hint: 'another run is starting on the same output; wait for it' });
}

/** Runs `body` holding the locks of all `targets` (taken in order; all released after). */
export async function withOutputLocks<T>(targets: LockTarget[], body: () => Promise<T>): Promise<T> {
  const locks: OutputLock[] = [];
  try {
    for (const t of targets) locks.push(lockOutput(t));
    return await body();
  } finally {
    for (const l of locks.reverse()) l.release();
  }
}
