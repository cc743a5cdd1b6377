/**
 * Talking to the Hugging Face Hub (or a server that speaks its API): the endpoint and token
 * from the environment, a fetch that retries 429 / 5xx / dropped connections with backoff
 * (honouring `Retry-After`), and the mapping of Hub failures to per-model error codes.
 */
import { HubApiError } from '@huggingface/hub';
import { ModelprintError, messageOf } from '../errors.js';
import { ModelError, type ModelErrorCode } from '../inference/errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Base URL without a trailing slash. */
  endpoint: string;
  /** HF_TOKEN (or none). */
  token: string | undefined;
  /** Attempts after the first for 429 / 5xx / network errors. */
  retries: number;
  /** First backoff (doubles per attempt) when the server gives no Retry-After. */
  backoffMs: number;
  /** Longest single wait, Retry-After included. */
  maxWaitMs: number;
  /** Called before each wait (for logs / progress). */
  onRetry?: (info: { url: string; attempt: number; waitMs: number; reason: string }) => void;
}

/** --endpoint, else HF_ENDPOINT, else huggingface.co; HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) authenticates. */
export function hubOptions(flags: { endpoint?: string; retries?: number }, env: NodeJS.ProcessEnv = process.env): HubOptions {
  const raw = flags.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ModelprintError('E_USAGE', `not a URL: ${raw}`, { subject: '--endpoint', hint: 'e.g. https://huggingface.co or http://127.0.0.1:8080' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ModelprintError('E_USAGE', `the Hub endpoint must be http(s): ${raw}`, { subject: '--endpoint' });
  }
  const backoff = Number(env.MODELPRINT_HUB_BACKOFF_MS);
  return {
    endpoint: raw.replace(/\/+$/, ''),
    token: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined,
    retries: flags.retries ?? 5,
    backoffMs: Number.isFinite(backoff) && backoff >= 0 ? backoff : 500,
    maxWaitMs: 60_000,
  };
}

/** Client parameters for @huggingface/hub calls. */
export function clientParams(o: HubOptions): { hubUrl: string; accessToken?: string; fetch: typeof fetch } {
  return { hubUrl: o.endpoint, ...(o.token ? { accessToken: o.token } : {}), fetch: retryingFetch(o) };
}

/** Seconds or an HTTP date → milliseconds to wait; null when absent or unreadable. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | null {
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether a status is worth retrying: 429 and every 5xx except 501 (Not Implemented). */
export const retryableStatus = (s: number): boolean => s === 429 || (s >= 500 && s !== 501);

/**
 * fetch with retries: 429 and 5xx wait `Retry-After` when given, else backoff·2^attempt;
 * network errors (a reset connection) back off the same way. The last response (or error)
 * is returned (thrown) as is once attempts run out.
 */
export function retryingFetch(o: HubOptions): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    for (let attempt = 0; ; attempt++) {
      let res: Response | null = null;
      let err: unknown = null;
      try {
        res = await fetch(input, init);
      } catch (e) {
        if ((e as Error).name === 'AbortError') throw e;
        err = e;
      }
      if (res && !retryableStatus(res.status)) return res;
      if (attempt >= o.retries) {
        if (res) return res;
        throw err;
      }
      const given = res ? parseRetryAfter(res.headers.get('retry-after')) : null;
      const waitMs = Math.min(o.maxWaitMs, given ?? o.backoffMs * 2 ** attempt);
      const reason = res ? `HTTP ${res.status}` : messageOf(err);
      if (res) await res.body?.cancel().catch(() => undefined);
      o.onRetry?.({ url, attempt: attempt + 1, waitMs, reason });
      await sleep(waitMs);
    }
  };
}

/** Per-model error codes of Hub failures. */
export type HubErrorCode = Extract<ModelErrorCode, 'gated' | 'unauthorized' | 'not_found' | 'download_failed' | 'checksum_mismatch' | 'unsafe_path' | 'disk_budget'>;

/**
 * A Hub failure as a per-model error: 401 on a gated repo or 403 → gated; other 401 →
 * unauthorized (private, or a bad token); 404 → not_found; anything else → download_failed.
 */
export function hubModelError(id: string, e: unknown, ctx: { gated?: boolean; token?: boolean } = {}): ModelError {
  if (e instanceof ModelError) return e;
  const status = e instanceof HubApiError ? e.statusCode : e instanceof HttpStatusError ? e.status : null;
  const msg = messageOf(e);
  if (status === 403 || (status === 401 && ctx.gated)) {
    return new ModelError('gated', id, `the repo is gated (HTTP ${status}): ${msg}`, ctx.token ? 'accept the conditions on the model page with the account of HF_TOKEN' : 'accept the conditions on the model page and set HF_TOKEN');
  }
  if (status === 401) return new ModelError('unauthorized', id, `not authorized (HTTP 401): ${msg}`, ctx.token ? 'HF_TOKEN has no access to this repo (private?)' : 'set HF_TOKEN to a token with read access');
  if (status === 404) return new ModelError('not_found', id, `not on the Hub (HTTP 404; deleted or renamed?): ${msg}`, 'check the model id');
  return new ModelError('download_failed', id, status && !msg.startsWith('HTTP') ? `HTTP ${status}: ${msg}` : msg, 'retry later (the download resumes where it stopped)');
}

/** A non-OK response of a plain fetch (file downloads), carrying its status. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly errorCode: string | null,
  ) {
    super(`HTTP ${status}${errorCode ? ` (${errorCode})` : ''} for ${url}`);
  }
}
