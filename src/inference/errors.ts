import { ModelprintError, type ErrorCode } from '../errors.js';

/**
 * Per-model failure codes (METHODS §1.6). They go into result rows (`error_code`) so a
 * batch can tell users *why* a model could not be evaluated. The four `unsupported_*`
 * codes are the kinds of METHODS' `unsupported_format`.
 */
export type ModelErrorCode =
  | 'not_found'
  | 'unsafe_path'
  | 'gated'
  | 'unsupported_gguf'
  | 'unsupported_mlx'
  | 'unsupported_safetensors'
  | 'unsupported_bitsandbytes'
  | 'unsupported_format'
  | 'unsupported_architecture'
  | 'corrupt_safetensors'
  | 'bad_gguf'
  | 'unsupported_gguf_type'
  | 'unsupported_quantization'
  | 'missing_base_model'
  | 'missing_tokenizer'
  | 'input_too_large'
  | 'tokenizer_mismatch'
  | 'corrupt_onnx'
  | 'unexpected_io'
  | 'load_failed'
  | 'inference_failed'
  | 'non_finite_logits'
  | 'no_allowed_tokens'
  // Hub downloads (src/hub): access, transfer and integrity failures, and the audit's disk budget.
  | 'unauthorized'
  | 'download_failed'
  | 'checksum_mismatch'
  | 'disk_budget';

const CLI_CODE: Record<ModelErrorCode, ErrorCode> = {
  not_found: 'E_NOT_FOUND',
  unsafe_path: 'E_INPUT',
  gated: 'E_PERMISSION',
  unsupported_gguf: 'E_MODEL_FORMAT',
  unsupported_mlx: 'E_MODEL_FORMAT',
  unsupported_safetensors: 'E_MODEL_FORMAT',
  unsupported_bitsandbytes: 'E_MODEL_FORMAT',
  unsupported_format: 'E_MODEL_FORMAT',
  unsupported_architecture: 'E_MODEL_FORMAT',
  corrupt_safetensors: 'E_MODEL_LOAD',
  bad_gguf: 'E_MODEL_LOAD',
  unsupported_gguf_type: 'E_MODEL_FORMAT',
  unsupported_quantization: 'E_MODEL_FORMAT',
  missing_base_model: 'E_NOT_FOUND',
  missing_tokenizer: 'E_TOKENIZER',
  input_too_large: 'E_INPUT',
  tokenizer_mismatch: 'E_TOKENIZER',
  corrupt_onnx: 'E_MODEL_LOAD',
  unexpected_io: 'E_MODEL_FORMAT',
  load_failed: 'E_MODEL_LOAD',
  inference_failed: 'E_INFERENCE',
  non_finite_logits: 'E_INFERENCE',
  no_allowed_tokens: 'E_TOKENIZER',
  unauthorized: 'E_PERMISSION',
  download_failed: 'E_IO',
  checksum_mismatch: 'E_IO',
  disk_budget: 'E_IO',
};

/** A model that cannot be evaluated: a row with -1 and this code, never a dead batch. */
export class ModelError extends ModelprintError {
  readonly modelCode: ModelErrorCode;
  constructor(modelCode: ModelErrorCode, model: string, message: string, hint?: string, cause?: unknown) {
    super(CLI_CODE[modelCode], `${model}: ${message}`, { subject: model, hint, cause });
    this.name = 'ModelError';
    this.modelCode = modelCode;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), model_code: this.modelCode };
  }
}

export function isModelError(e: unknown): e is ModelError {
  return e instanceof ModelError;
}
