#!/usr/bin/env python3
"""Writes the hostile binary fixtures of test/hostile-parsers.test.ts (issue 16, item 1).

Each file has a *valid* xxh3 checksum, so it gets past the checksum check to the size
checks it is meant to exercise. A valid twin of each (`*-ok.*`) proves the writer below
produces the real format and that only the hostile field makes the difference.

    pip install xxhash==3.*   # xxh3-64, the checksum of .mpsk and .mppart
    python3 tools/hostile_fixtures.py        # writes test/fixtures/hostile/

Formats: crates/modelprint-core/src/sketch/binary.rs (.mpsk) and
crates/modelprint-core/src/similarity/part.rs (.mppart).
"""
import os
import struct

import xxhash

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hostile')


def align(x: int) -> int:
    return (x + 63) // 64 * 64


def mpsk(models, prompts, sets, vocab_size, k) -> bytes:
    """An .mpsk file; sets[m][p] is an ascending id list."""
    n = len(models)
    names = [m.encode() for m in models]
    ids = [i for ms in sets for s in ms for i in s]
    names_offset = 128
    names_len = 8 * (n + 1) + sum(len(x) for x in names)
    flags_offset = align(names_offset + names_len)
    lengths_offset = align(flags_offset + 4 * n)
    ids_offset = align(lengths_offset + 4 * n * prompts)
    footer_offset = align(ids_offset + 4 * len(ids))
    file_len = footer_offset + 16
    b = bytearray(footer_offset)
    b[0:8] = b'MPSKETCH'
    struct.pack_into('<IIIII', b, 8, 1, 128, vocab_size, k, prompts)
    struct.pack_into('<Q', b, 32, n)
    b[40:72] = bytes(32)
    struct.pack_into('<QQQQQQQ', b, 72, names_offset, flags_offset, lengths_offset, ids_offset, len(ids), names_len, file_len)
    at = names_offset
    off = 0
    struct.pack_into('<Q', b, at, 0)
    for i, x in enumerate(names):
        off += len(x)
        struct.pack_into('<Q', b, at + 8 * (i + 1), off)
    at += 8 * (n + 1)
    for x in names:
        b[at:at + len(x)] = x
        at += len(x)
    lens = [len(s) for ms in sets for s in ms]
    struct.pack_into(f'<{len(lens)}I', b, lengths_offset, *lens)
    struct.pack_into(f'<{len(ids)}I', b, ids_offset, *ids)
    return bytes(b) + b'MPSKEND\0' + struct.pack('<Q', xxhash.xxh3_64_intdigest(bytes(b)))


def mppart(n, index, count, tiles, names=None) -> bytes:
    """An .mppart file; tiles is a list of (bi, bj, upper floats, lower floats)."""
    names = names if names is not None else [''] * n
    b = bytearray(b'MPSHARD\0')
    b += struct.pack('<IIQIIII', 1, 0, n, 1, 512, index, count)
    b += bytes(16)
    b += struct.pack('<Q', len(tiles))
    for x in names:
        e = x.encode()
        b += struct.pack('<I', len(e)) + e
    for bi, bj, upper, lower in tiles:
        b += struct.pack('<II', bi, bj)
        b += struct.pack(f'<{len(upper)}f', *upper)
        b += struct.pack(f'<{len(lower)}f', *lower)
    return bytes(b) + b'MPSHEND\0' + struct.pack('<Q', xxhash.xxh3_64_intdigest(bytes(b)))


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    sets = [[[1, 5, 9]], [[1, 5, 7]]]

    def write(name: str, data: bytes) -> None:
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)

    # Issue 16: a valid-checksum .mpsk whose vocab_size is 2^32 - 1 (a 256 GiB kernel table).
    write('vocab-ok.mpsk', mpsk(['a', 'b'], 1, sets, 1000, 3))
    write('vocab-2-32.mpsk', mpsk(['a', 'b'], 1, sets, 2**32 - 1, 3))
    # Shard parts: n = 2 models, one diagonal tile (the whole 2 × 2 matrix).
    square = [1.0, 0.5, 0.25, 1.0]
    write('part-ok.mppart', mppart(2, 0, 1, [(0, 0, square, [])], ['a', 'b']))
    # Shard count 2^32 - 1: one part of four billion (the merge allocated a slot per shard).
    write('part-count-2-32.mppart', mppart(2, 0, 2**32 - 1, [], ['a', 'b']))
    # n = 100,000 models and no tiles: a 40 GB matrix from a 400 kB file.
    write('part-n-100000.mppart', mppart(100_000, 0, 1, []))


if __name__ == '__main__':
    main()
