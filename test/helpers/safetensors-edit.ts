/** Hostile-input set-up of the safetensors-based format tests (plain, bitsandbytes, GPTQ / AWQ): copy a fixture, then edit its header or tensor bytes. */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

export type SafetensorsHeader = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** A copy of the fixture folder `from` at `dest`, edited by `edit`. */
export function copyFixture(from: string, dest: string, edit: (dir: string) => void): string {
  fs.cpSync(from, dest, { recursive: true });
  edit(dest);
  return dest;
}

/** The single-file checkpoint of a folder. */
export const stFile = (dir: string): string => path.join(dir, 'model.safetensors');

/** A safetensors file's bytes, header length and parsed header. */
export function readHeader(file: string): { b: Buffer; n: number; json: SafetensorsHeader } {
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return { b, n, json: JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as SafetensorsHeader };
}

/**
 * Rewrites the header (same data section: the data offsets stay valid). The new header is
 * padded with spaces to the old length where it fits, else the length field changes.
 */
export function rewriteHeader(file: string, edit: (j: SafetensorsHeader) => void): void {
  const { b, n, json } = readHeader(file);
  edit(json);
  const text = Buffer.from(JSON.stringify(json));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Math.max(n, text.length)));
  fs.writeFileSync(file, Buffer.concat([len, text, Buffer.alloc(Math.max(0, n - text.length), 0x20), b.subarray(8 + n)]));
}

/** Rewrites a tensor's bytes in place (same length). */
export function pokeTensor(file: string, tensor: string, edit: (bytes: Buffer) => void): void {
  const { b, n, json } = readHeader(file);
  expect(json[tensor], `no tensor ${tensor} in ${file}`).toBeDefined();
  const [s, e] = json[tensor].data_offsets;
  edit(b.subarray(8 + n + s, 8 + n + e));
  fs.writeFileSync(file, b);
}
