/** NPY v1.0 files (numpy.save format) for float32 matrices. */
import fs from 'node:fs';
import { writeFileAtomic } from './atomic.js';

export function encodeNpyFloat32(data: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pre = 10; // magic(6) + version(2) + header length(2)
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  header = header.padEnd(total - pre - 1, ' ') + '\n';
  const buf = Buffer.alloc(total + data.byteLength);
  buf.write('\x93NUMPY', 0, 'latin1');
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(header.length, 8);
  buf.write(header, pre, 'latin1');
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(buf, total);
  return buf;
}

export function writeNpyFloat32(file: string, data: Float32Array, shape: number[]): void {
  writeFileAtomic(file, encodeNpyFloat32(data, shape));
}

export function readNpyFloat32(file: string): { data: Float32Array; shape: number[] } {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file} is not an NPY file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!header.includes("'<f4'")) throw new Error(`${file}: only little-endian float32 NPY is supported`);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const off = start + hlen;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + buf.byteLength));
  return { data, shape };
}
