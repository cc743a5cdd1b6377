/** IEEE 754 half precision → float32, by one table of all 65536 values (built on first use). */
let table: Float32Array | null = null;

/** float16 bits → float32 value, all 65536 (exact: every half is a float32). */
export function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      table[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
    }
  }
  return table;
}

/** Half-precision values (e.g. ONNX Runtime's float16 tensor data as a Uint16Array) as float32. */
export function halfToFloat(bits: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}
