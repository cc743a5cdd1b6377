/**
 * A minimal protocol-buffers encoder: just what writing ONNX models needs.
 *
 * Messages are built bottom-up: a nested message is encoded into its own writer first
 * (so its length is known), then appended to its parent by reference. Large payloads
 * (tensor raw_data) are never copied until the final concatenation.
 */

/** Wire types of the protobuf encoding. */
export const WIRE = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private chunkBytes = 0;
  /** Small pending bytes (tags, varints, short strings) not yet flushed to a chunk. */
  private pending = new Uint8Array(256);
  private pendingLen = 0;

  /** Encoded size in bytes so far. */
  get length(): number {
    return this.chunkBytes + this.pendingLen;
  }

  private ensure(n: number): void {
    if (this.pendingLen + n <= this.pending.length) return;
    const next = new Uint8Array(Math.max(this.pending.length * 2, this.pendingLen + n));
    next.set(this.pending.subarray(0, this.pendingLen));
    this.pending = next;
  }

  private flush(): void {
    if (this.pendingLen === 0) return;
    this.chunks.push(this.pending.slice(0, this.pendingLen));
    this.chunkBytes += this.pendingLen;
    this.pendingLen = 0;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.pending[this.pendingLen++] = b;
  }

  /** An unsigned varint; negative numbers are written as 64-bit two's complement (10 bytes). */
  varint(value: number | bigint): this {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) throw new Error(`varint: ${value} is not an integer`);
      if (value >= 0 && value < 0x80000000) {
        let v = value;
        while (v > 0x7f) {
          this.byte((v & 0x7f) | 0x80);
          v >>>= 7;
        }
        this.byte(v);
        return this;
      }
      value = BigInt(value);
    }
    let v = BigInt.asUintN(64, value);
    while (v > 0x7fn) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** int32 / int64 / enum / bool field. */
  int(field: number, value: number | bigint | boolean): this {
    return this.tag(field, WIRE.varint).varint(typeof value === 'boolean' ? (value ? 1 : 0) : value);
  }

  /** float field (fixed32, little-endian IEEE 754). */
  float(field: number, value: number): this {
    this.tag(field, WIRE.fixed32);
    this.ensure(4);
    new DataView(this.pending.buffer, this.pending.byteOffset + this.pendingLen, 4).setFloat32(0, value, true);
    this.pendingLen += 4;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** A length-delimited field; payloads over 1 KiB are appended by reference, not copied. */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE.lengthDelimited).varint(data.byteLength);
    if (data.byteLength <= 1024) {
      this.ensure(data.byteLength);
      this.pending.set(data, this.pendingLen);
      this.pendingLen += data.byteLength;
    } else {
      this.flush();
      this.chunks.push(data);
      this.chunkBytes += data.byteLength;
    }
    return this;
  }

  /** An embedded message field. */
  message(field: number, msg: ProtoWriter): this {
    this.tag(field, WIRE.lengthDelimited).varint(msg.length);
    for (const c of msg.finish()) {
      if (c.byteLength <= 1024) {
        this.ensure(c.byteLength);
        this.pending.set(c, this.pendingLen);
        this.pendingLen += c.byteLength;
      } else {
        this.flush();
        this.chunks.push(c);
        this.chunkBytes += c.byteLength;
      }
    }
    return this;
  }

  /** The encoded message as a list of chunks (concatenate them in order). */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  /** The encoded message as one Buffer. */
  toBuffer(): Buffer {
    const chunks = this.finish();
    return Buffer.concat(chunks, this.chunkBytes);
  }
}
