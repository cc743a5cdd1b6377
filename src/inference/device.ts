import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ModelprintError } from '../errors.js';

export type DeviceRequest = 'cpu' | 'cuda' | 'auto';
export type Device = 'cpu' | 'cuda';

const require = createRequire(import.meta.url);

/** onnxruntime-node's binary folder for this platform. */
function ortBinDir(): string | null {
  try {
    const main = require.resolve('onnxruntime-node');
    const dir = path.join(path.dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return fs.existsSync(dir) ? dir : null;
  } catch {
    return null;
  }
}

/**
 * Whether ONNX Runtime's CUDA execution provider is installed. onnxruntime-node ships
 * without it; `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` fetches it (see README).
 */
export function cudaProviderInstalled(): boolean {
  const dir = ortBinDir();
  return dir !== null && fs.existsSync(path.join(dir, 'libonnxruntime_providers_cuda.so'));
}

/** Resolves --device: cuda asked for but absent is an error; auto falls back to the CPU. */
export function resolveDevice(req: DeviceRequest = 'auto'): Device {
  if (req === 'cpu') return 'cpu';
  const cuda = cudaProviderInstalled();
  if (req === 'cuda' && !cuda) {
    throw new ModelprintError('E_DEVICE', 'CUDA was requested (--device cuda) but ONNX Runtime has no CUDA execution provider here', {
      subject: '--device',
      hint: 'install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` on a machine with CUDA 12, or use --device cpu / auto',
    });
  }
  return cuda ? 'cuda' : 'cpu';
}
