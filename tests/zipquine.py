"""A zip file that contains itself, built at test time (Russ Cox's construction, "Zip Files All
The Way Down", 2010).

Deflate can say "copy these n bytes verbatim" (a stored block: literal) and "repeat the last n
bytes" (a fixed-Huffman block of length/distance pairs). With every opcode encoded in the same
number of bytes, a fixed program of literals and repeats prints itself with any prefix P and
suffix S around it. P is the zip's local header and S its central directory, so the member's
decompressed bytes are the whole zip. The CRC-32 stored in P and S is a fixed point found by
linear algebra over GF(2), since CRC-32 is affine in the bytes it covers.
"""

from __future__ import annotations

import bisect
import functools
import struct
import zlib

UNIT = 7  # bytes per opcode: the smallest size for which 4*UNIT, len(P)+UNIT and len(S)+UNIT all encode as repeats

_LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
_LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
_DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
              4097, 6145, 8193, 12289, 16385, 24577]
_DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
_EMPTY_FIXED_BLOCK = 10  # bits: header (3) and end-of-block (7)


class _Bits:
    """Deflate's bit order: values least significant bit first, Huffman codes most significant first."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def value(self, value: int, count: int) -> None:
        self.bits += [(value >> i) & 1 for i in range(count)]

    def code(self, code: int, count: int) -> None:
        self.bits += [(code >> i) & 1 for i in reversed(range(count))]

    def symbol(self, sym: int) -> None:
        """A literal/length symbol in the fixed Huffman code (only 256-287 are used here)."""
        if sym < 280:
            self.code(sym - 256, 7)
        else:
            self.code(0xC0 + sym - 280, 8)

    def empty_fixed_block(self) -> None:
        self.value(0, 1)
        self.value(1, 2)
        self.symbol(256)

    def to_bytes(self) -> bytes:
        assert len(self.bits) % 8 == 0, len(self.bits)
        return bytes(sum(bit << i for i, bit in enumerate(self.bits[at:at + 8])) for at in range(0, len(self.bits), 8))


def _length_index(length: int) -> int:
    return 28 if length == 258 else bisect.bisect_right(_LEN_BASE, length) - 1


def _dist_index(dist: int) -> int:
    return bisect.bisect_right(_DIST_BASE, dist) - 1


@functools.cache
def _pair_bits(length: int, dist: int) -> int:
    i = _length_index(length)
    return (7 if 257 + i < 280 else 8) + _LEN_EXTRA[i] + 5 + _DIST_EXTRA[_dist_index(dist)]


@functools.cache
def _split(left: int, dist: int, bits: int, parts: int) -> tuple[int, ...] | None:
    """Lengths (3-258 each, `parts` of them) adding up to `left` whose pairs at `dist` take exactly `bits`."""
    if parts == 0:
        return () if left == 0 and bits == 0 else None
    dist_bits = 5 + _DIST_EXTRA[_dist_index(dist)]
    if not (7 + dist_bits) * parts <= bits <= (13 + dist_bits) * parts or left < 3 * parts:
        return None  # a pair takes 7-13 bits for its length, and at least 3 bytes
    for length in range(3, min(258, left) + 1):
        rest = _split(left - length, dist, bits - _pair_bits(length, dist), parts - 1)
        if rest is not None:
            return (length, *rest)
    return None


def _repeat(n: int, final: bool = False) -> bytes | None:
    """'Repeat the last n bytes' in exactly UNIT bytes: empty fixed blocks, then one block of pairs."""
    for empties in range(4):
        for parts in range(1, 4):
            lengths = _split(n, n, 8 * UNIT - empties * _EMPTY_FIXED_BLOCK - 3 - 7, parts)
            if lengths is None:
                continue
            out = _Bits()
            for _ in range(empties):
                out.empty_fixed_block()
            out.value(int(final), 1)
            out.value(1, 2)
            for length in lengths:
                i, d = _length_index(length), _dist_index(n)
                out.symbol(257 + i)
                out.value(length - _LEN_BASE[i], _LEN_EXTRA[i])
                out.code(d, 5)
                out.value(n - _DIST_BASE[d], _DIST_EXTRA[d])
            out.symbol(256)
            return out.to_bytes()
    return None


def _literal(n: int) -> bytes:
    """'The next n bytes are literal' in exactly UNIT bytes: empty fixed blocks, then a stored block header."""
    out = _Bits()
    while (len(out.bits) + 3 + 7) // 8 + 4 < UNIT:
        out.empty_fixed_block()
    out.value(0, 3)
    out.bits += [0] * (-len(out.bits) % 8)
    data = out.to_bytes() + struct.pack("<HH", n, n ^ 0xFFFF)
    assert len(data) == UNIT
    return data


def _solve_crc(build) -> int:
    """The x with crc32(build(x)) == x: CRC-32 is affine, so solve (M + I) x = crc32(build(0)) over GF(2)."""
    base = zlib.crc32(build(0))
    columns = [zlib.crc32(build(1 << i)) ^ base for i in range(32)]
    rows = [[sum((((columns[c] >> r) & 1) ^ (r == c)) << c for c in range(32)), (base >> r) & 1] for r in range(32)]
    pivot_row: dict[int, int] = {}
    for c in range(32):
        pivot = next((r for r in range(32) if r not in pivot_row.values() and (rows[r][0] >> c) & 1), None)
        if pivot is None:
            continue
        for r in range(32):
            if r != pivot and (rows[r][0] >> c) & 1:
                rows[r][0] ^= rows[pivot][0]
                rows[r][1] ^= rows[pivot][1]
        pivot_row[c] = pivot
    if any(rows[r][1] and not rows[r][0] for r in range(32)):
        raise ValueError("no CRC fixed point")
    return sum(rows[r][1] << c for c, r in pivot_row.items())


def zip_quine(name: bytes = b"self.zip", copies: int = 1) -> bytes:
    """A zip whose member `name` is byte for byte the zip itself, listed `copies` times in its
    central directory (the entries share the one member: at most 3 fit in a repeat)."""
    local_len = 30 + len(name)
    central_len = (46 + len(name)) * copies
    for comment_len in range(300):  # the comment pads S until its repeat can be encoded
        suffix_len = central_len + 22 + comment_len
        # The last repeat ends the stream (final block); its copy in the literal before it is only data.
        ops = (_repeat(local_len + UNIT), _repeat(4 * UNIT), _repeat(suffix_len + UNIT, final=True))
        if None not in ops:
            break
    else:
        raise ValueError(f"no encoding for a name of {len(name)} bytes")
    rp, r4, rs = ops
    lp, ls, l0, l1, l4 = (_literal(n) for n in (local_len + UNIT, suffix_len + UNIT, 0, UNIT, 4 * UNIT))
    packed = 30 * UNIT + local_len + suffix_len
    size = local_len + packed + suffix_len

    def build(crc: int) -> bytes:
        local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, packed, size, len(name), 0) + name
        central = (struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, packed, size, len(name),
                               0, 0, 0, 0, 0, 0) + name) * copies
        suffix = central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, central_len, local_len + packed,
                                       comment_len) + b"q" * comment_len
        program = b"".join([lp, local, lp, rp, l1, rp, l1, l1, l4, rp, l1, l1, l4, r4, l4, r4, l4, r4, l4, r4, l4, r4,
                            l0, l0, ls, r4, l0, l0, ls, rs, suffix, rs])
        assert len(program) == packed
        return local + program + suffix

    return build(_solve_crc(build))
