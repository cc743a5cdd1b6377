/**
 * Confinement of paths read from files (ONNX external data `location`s, safetensors shard
 * names, …): a path written by a stranger is followed only when it names a regular file
 * inside the model's folder (or, for a Hugging Face cache snapshot, inside its repo folder,
 * where snapshot files link into ../../blobs). Anything else is a ModelError `unsafe_path`
 * naming the file and the field, before the file is opened.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError } from '../inference/errors.js';

export interface ConfineOptions {
  /** The model the path belongs to (error subject). */
  id: string;
  /** Where the path came from: file and field, e.g. `model.onnx: external_data location of "embed"`. */
  field: string;
  /** Folder the resolved (realpath) file must lie in; defaults to `root`. */
  realRoot?: string;
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * `rel` (a relative path from a file) joined onto `root`, checked: not absolute, no `..`
 * out of `root`, its real path (symlinks followed) inside `realRoot`, and a regular file
 * (never a FIFO, device, socket or folder, so opening it cannot block). Returns the real path.
 */
export function confinedPath(root: string, rel: string, opts: ConfineOptions): string {
  const unsafe = (why: string) =>
    new ModelError('unsafe_path', opts.id, `${opts.field}: "${rel}" ${why}`, 'the model folder is damaged or hostile; modelprint reads only regular files inside the model folder');
  if (rel === '' || rel.includes('\0')) throw unsafe('is not a file name');
  if (path.isAbsolute(rel) || /^[A-Za-z]:[\\/]/.test(rel)) throw unsafe('is an absolute path');
  const joined = path.resolve(root, rel);
  if (!inside(path.resolve(root), joined)) throw unsafe(`leads out of the model folder ${root}`);
  let real: string;
  try {
    real = fs.realpathSync(joined);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw unsafe('is a symbolic link loop');
    throw new ModelError('not_found', opts.id, `${opts.field}: "${rel}" does not exist (${joined}${code === 'ENOENT' && isLink(joined) ? ', a dangling symbolic link' : ''})`, 'download the complete model');
  }
  const realRoot = fs.realpathSync(opts.realRoot ?? root);
  if (!inside(realRoot, real)) throw unsafe(`resolves to ${real}, outside the model folder ${realRoot}`);
  if (!fs.statSync(real).isFile()) throw unsafe('is not a regular file');
  return real;
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Opens a file for reading without blocking (O_NONBLOCK, so a FIFO swapped in after the
 * check cannot hang the process) and checks that what was opened is a regular file.
 * Returns the descriptor and the file's size.
 */
export function openRegularFile(file: string, opts: Pick<ConfineOptions, 'id' | 'field'>): { fd: number; size: number } {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new ModelError('unsafe_path', opts.id, `${opts.field}: ${file} is not a regular file`, 'modelprint reads only regular files inside the model folder');
  }
  return { fd, size: st.size };
}
