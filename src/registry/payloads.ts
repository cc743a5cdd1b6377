/**
 * Fingerprint payloads are data from strangers (`registry import`, a shared PostgreSQL
 * registry anyone with admin rights writes): each is checked before it is stored on import
 * and before it is used on read.
 *
 * - `bottomk`: the bytes of a one-model `.mpsk` sketch collection, named by the model key it
 *   is stored under. The engine checks the file (checksum, sizes against the bytes, the caps
 *   of SECURITY.md) before allocating; here it must also hold exactly one model, the one of
 *   its key, so that a payload copied onto another model's key is never taken for that
 *   model's sketch.
 * - `input_output`, `weight`, `architecture`: little-endian float64 vectors.
 */
import type { SketchSet } from '../../native/index.js';
import { native } from '../native/index.js';
import { messageOf } from '../errors.js';

export const SKETCH_METHOD = 'bottomk';
const VECTOR_METHODS = new Set(['input_output', 'weight', 'architecture']);

/** The sketch of `payload`, or why it cannot be model `key`'s sketch. */
export function decodeSketchPayload(payload: Buffer, key: string): { set: SketchSet } | { problem: string } {
  let set: SketchSet;
  try {
    set = native.SketchSet.fromBytes(payload);
  } catch (e) {
    return { problem: `is not a valid sketch (${messageOf(e)})` };
  }
  if (set.count !== 1) return { problem: `holds ${set.count} models' sketches, not one` };
  if (set.modelIds[0] !== key) return { problem: `is the sketch of ${JSON.stringify(set.modelIds[0])}, not of ${JSON.stringify(key)}` };
  return { set };
}

/** Why a stored fingerprint payload cannot belong to model `key` (null when it can). Unknown methods are not checked. */
export function payloadProblem(method: string, key: string, payload: Buffer): string | null {
  if (method === SKETCH_METHOD) {
    const r = decodeSketchPayload(payload, key);
    return 'problem' in r ? r.problem : null;
  }
  if (VECTOR_METHODS.has(method) && (payload.byteLength === 0 || payload.byteLength % 8 !== 0)) {
    return `is a ${method} vector of ${payload.byteLength} bytes (not a whole, non-empty number of float64 values)`;
  }
  return null;
}
