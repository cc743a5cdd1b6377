import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { failureOf } from '../../methods/runner.js';
import { hubCacheDir } from '../../inference/hub.js';
import { hubOptions } from '../../hub/client.js';
import { readDerivativesCsv } from '../../hub/discover.js';
import { Limiter, downloadRepo, planRepo } from '../../hub/download.js';
import { renderTable } from '../../ui/table.js';
import { endpointFlag } from './derivatives.js';

interface Row {
  model_id: string;
  status: 'ok' | 'failed';
  revision: string | null;
  format: string | null;
  files: number;
  bytes: number;
  fetched_bytes: number;
  snapshot: string | null;
  error_code: string | null;
  error_message: string | null;
}

export default class HubDownload extends BaseCommand<typeof HubDownload> {
  static override summary = 'Download what fingerprinting needs into the Hugging Face cache.';
  static override description =
    'Fetches config and tokenizer files and the weights of one format (ONNX, else safetensors or a LoRA adapter, else one GGUF quant by preference: F32, BF16, F16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q4_K_M, Q4_0) into the standard cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub: blobs/, snapshots/<commit>/, refs/main), so `lineage`, `models add` and Python tools find them by id. Interrupted files resume (Range); LFS files are checked against their sha256; 429 and 5xx are retried with backoff honouring Retry-After. A model that cannot be fetched gets a code (gated, unauthorized, not_found, download_failed, checksum_mismatch, unsafe_path) and the others go on; exit 3 when any failed.';
  static override examples = [
    '<%= config.bin %> hub download Qwen/Qwen2.5-0.5B-Instruct',
    '<%= config.bin %> hub download --from derivatives.csv --concurrency 8 --json',
  ];
  static override strict = false;
  static override args = { ids: Args.string({ description: 'Model ids (org/name).', required: false }) };
  static override flags = {
    from: Flags.string({ description: 'A derivatives CSV (model_id column) to download every model of.' }),
    endpoint: endpointFlag,
    concurrency: Flags.integer({ description: 'Files downloaded at once.', default: 4, min: 1, max: 64 }),
    retries: Flags.integer({ description: 'Retries of a request on 429 / 5xx / dropped connections.', default: 5, min: 0 }),
  };

  async run(): Promise<{ cache: string; ok: number; failed: number; models: Row[] }> {
    const f = this.flags;
    const ids = [...this.positional, ...(f.from ? readDerivativesCsv(f.from).map((r) => r.model_id) : [])];
    const unique = [...new Set(ids)];
    if (unique.length === 0) throw new ModelprintError('E_USAGE', 'no models given', { hint: 'pass model ids or --from derivatives.csv' });
    const hub = hubOptions({ endpoint: f.endpoint, retries: f.retries });
    hub.onRetry = (r) => this.logger.info(`retry ${r.attempt} in ${(r.waitMs / 1000).toFixed(1)}s: ${r.reason} (${r.url})`);
    const cache = hubCacheDir();
    const limiter = new Limiter(f.concurrency);
    const models = new Limiter(Math.max(1, Math.ceil(f.concurrency / 2)));
    const rows: Row[] = await Promise.all(
      unique.map((id) =>
        models.run(async (): Promise<Row> => {
          try {
            const plan = await planRepo(id, hub);
            const r = await downloadRepo(plan, hub, cache, limiter);
            this.logger.info(`ok     ${id} (${r.format}, ${r.files} files, ${r.fetchedBytes} bytes fetched)`);
            return { model_id: id, status: 'ok', revision: r.revision, format: r.format, files: r.files, bytes: r.bytes, fetched_bytes: r.fetchedBytes, snapshot: r.snapshotDir, error_code: null, error_message: null };
          } catch (e) {
            const x = failureOf(e);
            this.logger.warn(`failed ${id} [${x.code}] ${x.message}`);
            return { model_id: id, status: 'failed', revision: null, format: null, files: 0, bytes: 0, fetched_bytes: 0, snapshot: null, error_code: x.code, error_message: x.message };
          }
        }),
      ),
    );
    this.out(renderTable(['model', 'status', 'format', 'files', 'bytes', 'error'], rows.map((r) => [r.model_id, r.status, r.format ?? '-', r.files, r.bytes, r.error_code ?? ''])));
    const failed = rows.filter((r) => r.status === 'failed').length;
    this.out(`${rows.length - failed} downloaded, ${failed} failed → ${cache}`);
    this.partial(failed);
    return { cache, ok: rows.length - failed, failed, models: rows };
  }
}
