import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ggufActivationsFlag, ggufQuantFlag, onnxVariantFlag } from '../../cli/method-flags.js';
import { setGgufActivations, setGgufQuantPreference } from '../../inference/resolve.js';
import type { OnnxVariantRequest } from '../../inference/format.js';
import { inspectModel, type ModelInspection } from '../../inference/inspect.js';
import type { DeviceRequest } from '../../inference/device.js';
import { renderTable } from '../../ui/table.js';

export default class ModelsInspect extends BaseCommand<typeof ModelsInspect> {
  static override summary = 'Show what a model is (format, architecture, vocabulary, special tokens) and whether modelprint can run it.';
  static override description = 'Exit code 0 when the model runs, 1 when it cannot (the error code says why: unsupported_architecture, bad_gguf, missing_tokenizer, corrupt_onnx, …).';
  static override examples = [
    '<%= config.bin %> models inspect ./zoo/alpha-base',
    '<%= config.bin %> models inspect ~/.cache/huggingface/hub/models--org--name/snapshots/abc123 --json',
    '<%= config.bin %> models inspect Xenova/tiny-model@main --onnx-variant q4',
  ];
  static override args = { path: Args.string({ description: 'Model folder, hub cache snapshot, Hub id (org/name[@revision], from the local cache) or .onnx file (several may follow).', required: true }) };
  static override strict = false;
  static override flags = {
    device: Flags.string({ options: ['cpu', 'cuda', 'auto'], default: 'auto', description: 'Device to try the model on.' }),
    tokenizer: Flags.string({ description: 'tokenizer.json to use with a bare .onnx file.' }),
    'onnx-variant': onnxVariantFlag,
    'gguf-quant': ggufQuantFlag,
    'gguf-activations': ggufActivationsFlag,
  };

  /**
   * With --json the document carries `ok` like every command's envelope: false (exit 1)
   * when a model does not run, with its `error` (model code, message, hint) beside the
   * fields that could be read.
   */
  async run(): Promise<(ModelInspection & { ok: boolean }) | { ok: boolean; models: ModelInspection[] }> {
    const paths = this.positional;
    setGgufQuantPreference(this.flags['gguf-quant']);
    setGgufActivations(this.flags['gguf-activations']);
    const opts = { device: this.flags.device as DeviceRequest, tokenizer: this.flags.tokenizer, onnxVariant: this.flags['onnx-variant'] as OnnxVariantRequest };
    if (paths.length > 1) {
      const all: ModelInspection[] = [];
      for (const p of paths) all.push(await inspectModel(p, opts));
      this.out(renderTable(['path', 'format', 'variant', 'layers', 'vocab', 'runs'], all.map((r) => [r.path, r.format, r.onnx_variant ?? '-', r.layers, r.logits_width ?? r.vocab_size, r.runs ? 'yes' : `no: ${r.error?.code}`])));
      if (all.some((r) => !r.runs)) process.exitCode = 1;
      return { ok: all.every((r) => r.runs), models: all };
    }
    const r = await inspectModel(this.args.path, opts);
    const specials = Object.entries(r.special_tokens)
      .filter(([, v]) => v)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    this.out(
      renderTable(
        ['field', 'value'],
        [
          ['path', r.path],
          ['format', r.quantization ? `${r.format} (${r.quantization})` : r.format],
          ['hub repo / revision', r.repo_id ? `${r.repo_id} @ ${r.revision}` : '-'],
          ['model type', r.model_type],
          ['architecture', r.architecture],
          ['layers', r.layers],
          ['hidden size', r.hidden_size],
          ['heads / kv heads / head dim', `${r.heads ?? '-'} / ${r.kv_heads ?? '-'} / ${r.head_dim ?? '-'}`],
          ['intermediate size', r.intermediate_size],
          ['vocab (config / tokenizer / logits)', `${r.vocab_size ?? '-'} / ${r.tokenizer_vocab_size ?? '-'} / ${r.logits_width ?? '-'}`],
          ['special tokens', `${specials} ids=[${r.special_token_ids.join(', ')}]`],
          ['onnx', r.onnx_file ? `${r.onnx_file} (${((r.onnx_bytes ?? 0) / 2 ** 20).toFixed(1)} MiB)` : '-'],
          ['onnx variant / dtype', `${r.onnx_variant ?? '-'} / ${r.onnx_dtype ?? '-'}${r.onnx_variants.length > 1 ? ` (has: ${r.onnx_variants.join(', ')})` : ''}`],
          ['kv cache', r.kv_cache === null ? '-' : String(r.kv_cache)],
          ['runs', r.runs ? `yes (${r.device})` : `no: [${r.error?.code}] ${r.error?.message}${r.error?.hint ? ` — ${r.error.hint}` : ''}`],
        ],
      ),
    );
    if (!r.runs) process.exitCode = 1;
    return { ok: r.runs, ...r };
  }
}
