/**
 * The one ONNX protobuf codec: protobufjs over the official onnx.proto (vendored in
 * src/vendor/onnx). The schema is loaded from its generated JSON descriptor on first use
 * (Root.fromJSON: no .proto parsing, no large generated module at startup); the message
 * types come from pbts (src/vendor/onnx/onnx.d.ts, type-only). Regenerate both with
 * `npm run gen:onnx`. Why not pbjs static code: its generated JS cannot live in this
 * TypeScript-only build (tsc would neither type-check nor copy it) and is ~10k lines;
 * reflection costs one Root.fromJSON (milliseconds) and protobufjs compiles the same
 * encoders/decoders on first use.
 */
import { createRequire } from 'node:module';
import type Long from 'long';
import type * as Protobuf from 'protobufjs';
import { descriptor } from '../vendor/onnx/descriptor.js';
import type { onnx } from '../vendor/onnx/onnx.js';

export type { onnx };

let root: Protobuf.Root | null = null;

/** protobufjs and the schema are loaded on first use, so commands that never touch ONNX files do not pay for them. */
function messageType(name: string): Protobuf.Type {
  if (!root) {
    const protobuf = createRequire(import.meta.url)('protobufjs') as typeof Protobuf;
    root = protobuf.Root.fromJSON(descriptor as Protobuf.INamespace);
  }
  return root.lookupType(`onnx.${name}`);
}

/** Decodes a model file's bytes (bytes fields such as raw_data are views into `bytes`). */
export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return messageType('ModelProto').decode(bytes) as unknown as onnx.ModelProto;
}

/** Encodes a model (fields in field-number order, proto2 repeated scalars unpacked). */
export function encodeModel(model: onnx.IModelProto): Uint8Array {
  return messageType('ModelProto').encode(model).finish();
}

/** An int64 field as a number (ONNX dims, versions and offsets fit in 2^53). */
export function int64(x: number | Long | null | undefined): number {
  if (x === null || x === undefined) return 0;
  return typeof x === 'number' ? x : x.toNumber();
}

/** TensorProto.DataType codes (the subset the project reads or writes). */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** The one ONNX data type table: element name (numpy style) and width in bytes. */
export const DATA_TYPES: Readonly<Record<number, { name: string; bytes: number }>> = {
  [DataType.FLOAT]: { name: 'float32', bytes: 4 },
  [DataType.UINT8]: { name: 'uint8', bytes: 1 },
  [DataType.INT8]: { name: 'int8', bytes: 1 },
  [DataType.UINT16]: { name: 'uint16', bytes: 2 },
  [DataType.INT16]: { name: 'int16', bytes: 2 },
  [DataType.INT32]: { name: 'int32', bytes: 4 },
  [DataType.INT64]: { name: 'int64', bytes: 8 },
  [DataType.STRING]: { name: 'string', bytes: 0 },
  [DataType.BOOL]: { name: 'bool', bytes: 1 },
  [DataType.FLOAT16]: { name: 'float16', bytes: 2 },
  [DataType.DOUBLE]: { name: 'float64', bytes: 8 },
  [DataType.UINT32]: { name: 'uint32', bytes: 4 },
  [DataType.UINT64]: { name: 'uint64', bytes: 8 },
  [DataType.BFLOAT16]: { name: 'bfloat16', bytes: 2 },
};

/** AttributeProto.AttributeType codes. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** TensorProto.DataLocation.EXTERNAL. */
export const EXTERNAL = 1;
