#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check a QMP screendump (PPM) of text on a framebuffer console, and save it as PNG.

Usage: screen.py SCREEN.ppm OUT.png WIDTH HEIGHT LINES COLUMNS
The picture must be WIDTH x HEIGHT; each of the first LINES text lines (8x16 font)
must have lit pixels within its first COLUMNS characters, and the rest of the screen
must be dark (a blank or garbled screen fails). Prints one "key value" line per
measure; exit status 0 when the picture passes, 1 with the reason on stderr.
"""
import struct
import sys
import zlib


def read_ppm(path):
    data = open(path, "rb").read()
    fields, i = [], 0
    while len(fields) < 4:
        while data[i:i + 1].isspace():
            i += 1
        if data[i:i + 1] == b"#":
            i = data.index(b"\n", i)
            continue
        j = i
        while not data[j:j + 1].isspace():
            j += 1
        fields.append(data[i:j])
        i = j
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError("not an 8-bit binary PPM")
    return int(fields[1]), int(fields[2]), data[i + 1:]


def write_png(path, w, h, rgb):
    rows = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    want_w, want_h, lines, cols = map(int, sys.argv[3:])
    w, h, rgb = read_ppm(src)
    write_png(out, w, h, rgb)
    print("size %dx%d" % (w, h))
    if (w, h) != (want_w, want_h):
        print("the picture is %dx%d, not %dx%d" % (w, h, want_w, want_h), file=sys.stderr)
        return 1

    def lit(x, y):
        p = (y * w + x) * 3
        return rgb[p] + rgb[p + 1] + rgb[p + 2] > 3 * 96

    text_w = min(cols * 8, w)
    for line in range(lines):
        n = sum(lit(x, y) for y in range(line * 16, line * 16 + 16) for x in range(text_w))
        print("line%d %d" % (line, n))
        # A line of text lights roughly 15-30% of its cells; blank or solid is wrong.
        if not text_w * 16 // 50 < n < text_w * 16 // 2:
            print("text line %d has %d lit pixels: not text" % (line, n), file=sys.stderr)
            return 1
    rest = sum(lit(x, y) for y in range(lines * 16 + 16, h, 2) for x in range(0, w, 2))
    print("rest %d" % rest)
    if rest > 50:
        print("%d lit pixels (sampled) below the text: not a text console" % rest, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
