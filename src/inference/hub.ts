/**
 * Hugging Face Hub ids (`org/name[@revision]`) resolved in the local Hugging Face cache.
 * modelprint never downloads, so `HF_HUB_OFFLINE=1` holds trivially: a repo that is not in
 * the cache is a `not_found` error that says how to fetch it.
 *
 * Cache layout (huggingface_hub): `<cache>/models--org--name/{refs/<rev>, snapshots/<commit>/…,
 * blobs/<sha>}`; snapshot files are symlinks into `../../blobs`. Everything resolved here must
 * stay inside the repo folder (realpath), and a `refs/<rev>` file must hold a plain revision
 * naming an existing snapshot: no other snapshot is used silently instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelError } from './errors.js';

/** Where huggingface_hub keeps its cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return path.resolve(env.HF_HUB_CACHE);
  if (env.HUGGINGFACE_HUB_CACHE) return path.resolve(env.HUGGINGFACE_HUB_CACHE);
  if (env.HF_HOME) return path.resolve(env.HF_HOME, 'hub');
  const xdg = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface', 'hub');
}

const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;
/** A revision: a branch/tag name (may hold `/`, as refs/pr/1 does) or a commit hash. */
const REVISION = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
/** What a refs/<rev> file may hold: one plain revision (a commit hash), no path parts. */
const REF_CONTENT = /^[A-Za-z0-9._-]+$/;
const COMMIT = /^[0-9a-f]{40}$/;

export interface HubRef {
  repoId: string;
  /** As given after `@`, or null (meaning `main`). */
  revision: string | null;
}

/** Parses `org/name[@revision]`; null when the string is not shaped like a Hub model id. */
export function parseHubId(ref: string): HubRef | null {
  const at = ref.indexOf('@');
  const repo = at >= 0 ? ref.slice(0, at) : ref;
  const revision = at >= 0 ? ref.slice(at + 1) : null;
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME_PART.test(p) && !p.includes('..'))) return null;
  if (revision !== null && (!REVISION.test(revision) || revision.split('/').some((s) => s === '.' || s === '..'))) return null;
  return { repoId: repo, revision };
}

export interface HubSnapshot {
  repoId: string;
  /** The commit the snapshot folder is named after. */
  revision: string;
  /** The ref that was followed (main, a branch, a tag) or null for a commit given directly. */
  ref: string | null;
  /** models--org--name folder (realpath). */
  repoDir: string;
  /** snapshots/<commit> folder. */
  snapshotDir: string;
}

/** realpath of p must be repoDir or below it; otherwise unsafe_path. */
export function assertInsideRepo(id: string, repoDir: string, p: string): string {
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    throw new ModelError('not_found', id, `${p} does not exist (dangling link in the Hugging Face cache?)`, 'fetch the repo again with `huggingface-cli download`');
  }
  const rel = path.relative(repoDir, real);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new ModelError('unsafe_path', id, `${p} resolves to ${real}, outside the cache folder ${repoDir}`, 'the Hugging Face cache was tampered with; fetch the repo again');
  }
  return real;
}

/** The repo id of a cache repo folder name (models--org--name). */
export function repoIdOfFolder(name: string): string | null {
  const m = /^models--(.+)$/.exec(name);
  return m ? m[1].split('--').join('/') : null;
}

/**
 * Picks the snapshot of a cache repo folder: a commit hash names its snapshot directly,
 * otherwise refs/<revision> must hold a plain revision whose snapshot exists. With no
 * revision given and no refs/main, a folder holding exactly one snapshot uses it.
 */
export function snapshotOf(repoFolder: string, repoId: string, revision: string | null, display = repoId): HubSnapshot {
  const repoDir = fs.realpathSync(repoFolder);
  const snapshots = path.join(repoDir, 'snapshots');
  const pick = (commit: string, ref: string | null): HubSnapshot => {
    const snap = path.join(snapshots, commit);
    if (!fs.existsSync(snap) || !fs.statSync(snap).isDirectory()) {
      throw new ModelError(
        'not_found',
        display,
        ref ? `refs/${ref} names snapshot ${commit}, which is not in ${snapshots}` : `no snapshot ${commit} in ${snapshots}`,
        'fetch that revision with `huggingface-cli download` (modelprint reads the cache only; it never downloads)',
      );
    }
    return { repoId, revision: commit, ref, repoDir, snapshotDir: assertInsideRepo(display, repoDir, snap) };
  };
  const rev = revision ?? 'main';
  if (!REVISION.test(rev) || rev.split('/').some((s) => s === '.' || s === '..')) {
    throw new ModelError('unsafe_path', display, `revision "${rev}" is not a plain branch, tag or commit name`, 'pass a branch, tag or commit hash after @');
  }
  const refFile = path.join(repoDir, 'refs', ...rev.split('/'));
  if (fs.existsSync(refFile) && fs.statSync(refFile).isFile()) {
    assertInsideRepo(display, repoDir, refFile);
    const content = fs.readFileSync(refFile, 'utf8').trim();
    if (!REF_CONTENT.test(content) || content === '.' || content === '..' || content.includes('..')) {
      throw new ModelError('unsafe_path', display, `refs/${rev} does not hold a plain revision (${JSON.stringify(content.slice(0, 80))})`, 'the Hugging Face cache was tampered with; fetch the repo again');
    }
    return pick(content, rev);
  }
  if (REF_CONTENT.test(rev) && fs.existsSync(path.join(snapshots, rev))) return pick(rev, null);
  if (revision === null && fs.existsSync(snapshots)) {
    const revs = fs.readdirSync(snapshots).filter((r) => !r.startsWith('.'));
    if (revs.length === 1) return pick(revs[0], null);
    throw new ModelError('not_found', display, `${repoFolder} has ${revs.length} snapshots and no refs/main`, 'name one: org/name@<commit>, or pass the snapshot folder itself');
  }
  throw new ModelError(
    'not_found',
    display,
    COMMIT.test(rev) ? `no snapshot ${rev} in ${snapshots}` : `no refs/${rev} in ${repoDir}`,
    'fetch that revision with `huggingface-cli download` (modelprint reads the cache only; it never downloads)',
  );
}

/** Resolves `org/name[@revision]` in the local cache; throws not_found / unsafe_path. */
export function resolveHubId(ref: string, env: NodeJS.ProcessEnv = process.env): HubSnapshot {
  const h = parseHubId(ref);
  if (!h) throw new ModelError('not_found', ref, 'not a local path and not a Hugging Face id (org/name[@revision])', 'pass a model folder, an .onnx file or a Hub id in the local cache');
  const cache = hubCacheDir(env);
  const folder = path.join(cache, `models--${h.repoId.split('/').join('--')}`);
  if (!fs.existsSync(folder)) {
    const offline = env.HF_HUB_OFFLINE === '1' || env.HF_HUB_OFFLINE?.toLowerCase() === 'true';
    throw new ModelError(
      'not_found',
      ref,
      `no local path ${ref}, and ${h.repoId} is not in the Hugging Face cache ${cache} (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub)`,
      offline
        ? 'HF_HUB_OFFLINE=1 is set: fetch it on a connected machine and copy the cache folder over (modelprint never downloads)'
        : `fetch it with \`huggingface-cli download ${h.repoId}\` (modelprint never downloads), or set HF_HUB_CACHE`,
    );
  }
  return snapshotOf(folder, h.repoId, h.revision, ref);
}

/**
 * If p is inside a cache repo folder (models--org--name or below), that folder and its
 * repo id; used to confine the files a snapshot path resolves to.
 */
export function cacheRepoOf(p: string): { repoFolder: string; repoId: string; snapshot: string | null } | null {
  const parts = path.resolve(p).split(path.sep);
  for (let i = parts.length - 1; i >= 0; i--) {
    const repoId = repoIdOfFolder(parts[i]);
    if (repoId && parseHubId(repoId)) {
      const snapshot = parts[i + 1] === 'snapshots' && parts[i + 2] ? parts[i + 2] : null;
      return { repoFolder: parts.slice(0, i + 1).join(path.sep) || path.sep, repoId, snapshot };
    }
  }
  return null;
}
