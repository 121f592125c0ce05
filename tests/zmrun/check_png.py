#!/usr/bin/env python3
"""Checks the picture of zmrun's SVG chart, as headless Chromium rendered it.

Usage: check_png.py chart.png

The chart is 900x460 with the plot in x 100..870, y 60..400 (svg.c: W, H,
ML, MR, MT, MB). Asserts that
  (a) the heap curve (#1f77b4) is drawn across most of the plot's width,
  (b) the RSS curve (#ff7f0e) likewise,
  (c) the peak marker (#d62728, a filled circle of radius 6) is there,
  (d) there is text: dark pixels in the left margin (the y tick labels and
      the axis title), under the x axis (tick labels and "time (s)") and in
      the title band at the top.
Prints what it measured; exits 1 with a message per failed check, 2 when the
file is not a PNG it can read. Standard library only: the PNG is decoded
here (8-bit RGB or RGBA, not interlaced, all five filter types).
"""
import struct
import sys
import zlib

W, H = 900, 460
PLOT_X0, PLOT_X1, PLOT_Y0, PLOT_Y1 = 100, 870, 60, 400

HEAP = (0x1F, 0x77, 0xB4)
RSS = (0xFF, 0x7F, 0x0E)
PEAK = (0xD6, 0x27, 0x28)
TOLERANCE = 16      # per channel: rendering may shift a colour a little
DARK = 110          # a text pixel: every channel below this (text is black)

MIN_CURVE_PIXELS = 300
MIN_CURVE_COLUMNS = 0.55   # of the plot's width
MIN_PEAK_PIXELS = 40       # the circle alone is about 110 pixels
MIN_TEXT_PIXELS = {"left margin": 150, "x axis": 100, "title": 150}


class BadPNG(Exception):
    pass


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(path):
    """Returns (width, height, rows): rows[y] is a bytes of RGB triples."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise BadPNG("not a PNG file (bad signature)")
    pos, ihdr, idat = 8, None, []
    while True:
        if pos + 8 > len(data):
            raise BadPNG("truncated: no IEND chunk")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise BadPNG("truncated chunk %r" % ctype)
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise BadPNG("CRC mismatch in chunk %r" % ctype)
        pos += 12 + length
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if ihdr is None or not idat:
        raise BadPNG("no IHDR or no IDAT chunk")
    width, height, depth, color, comp, filt, interlace = ihdr
    if depth != 8 or color not in (2, 6):
        raise BadPNG("only 8-bit RGB/RGBA is supported (bit depth %d, colour type %d)"
                     % (depth, color))
    if comp != 0 or filt != 0 or interlace != 0:
        raise BadPNG("unsupported compression/filter/interlace method %d/%d/%d"
                     % (comp, filt, interlace))
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) < height * (stride + 1):
        raise BadPNG("image data too short: %d bytes for %dx%d" % (len(raw), width, height))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        base = y * (stride + 1)
        ftype = raw[base]
        cur = bytearray(raw[base + 1:base + 1 + stride])
        if ftype == 0:
            pass
        elif ftype == 1:  # Sub
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 0xFF
        elif ftype == 2:  # Up
            for i in range(stride):
                cur[i] = (cur[i] + prev[i]) & 0xFF
        elif ftype == 3:  # Average
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                if i >= bpp:
                    cur[i] = (cur[i] + paeth(cur[i - bpp], prev[i], prev[i - bpp])) & 0xFF
                else:
                    cur[i] = (cur[i] + prev[i]) & 0xFF
        else:
            raise BadPNG("row %d: unknown filter type %d" % (y, ftype))
        prev = cur
        if bpp == 4:  # composite on white, as a viewer would show it
            rgb = bytearray(width * 3)
            for x in range(width):
                r, g, b, a = cur[4 * x:4 * x + 4]
                for k, v in enumerate((r, g, b)):
                    rgb[3 * x + k] = (v * a + 255 * (255 - a) + 127) // 255
            rows.append(bytes(rgb))
        else:
            rows.append(bytes(cur))
    return width, height, rows


def near(px, color):
    return all(abs(p - c) <= TOLERANCE for p, c in zip(px, color))


def pixels(rows, x0, x1, y0, y1):
    """Yields (x, y, (r, g, b)) for x0 <= x < x1, y0 <= y < y1."""
    for y in range(y0, y1):
        row = rows[y]
        for x in range(x0, x1):
            yield x, y, tuple(row[3 * x:3 * x + 3])


def main(argv):
    if len(argv) != 2:
        print("usage: check_png.py chart.png", file=sys.stderr)
        return 2
    try:
        width, height, rows = decode_png(argv[1])
    except (OSError, BadPNG, zlib.error) as e:
        print("check_png: %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    print("check_png: %s: %dx%d" % (argv[1], width, height))
    if (width, height) != (W, H):
        print("check_png: FAIL: the picture is %dx%d, the chart is %dx%d"
              % (width, height, W, H), file=sys.stderr)
        return 1
    failures = []

    # (a), (b): the curves, counted inside the plot only (the legend's
    # samples of the same colours are above it, at y 44).
    plot = [(x, y, px) for x, y, px in
            pixels(rows, PLOT_X0 - 2, PLOT_X1 + 2, PLOT_Y0 - 2, PLOT_Y1 + 3)]
    plot_w = PLOT_X1 - PLOT_X0
    for name, color in (("heap #1f77b4", HEAP), ("RSS #ff7f0e", RSS)):
        hits = [(x, y) for x, y, px in plot if near(px, color)]
        cols = {x for x, _ in hits}
        span = (min(cols), max(cols)) if cols else (None, None)
        print("  %-18s %6d pixels, %3d columns (%.0f%% of the plot's width), x %s..%s"
              % (name, len(hits), len(cols), 100.0 * len(cols) / plot_w, span[0], span[1]))
        if len(hits) < MIN_CURVE_PIXELS:
            failures.append("%s: %d pixels of that colour in the plot, want >= %d"
                            % (name, len(hits), MIN_CURVE_PIXELS))
        if len(cols) < MIN_CURVE_COLUMNS * plot_w:
            failures.append("%s: drawn in %d columns of the plot's %d, want >= %.0f%%"
                            % (name, len(cols), plot_w, 100 * MIN_CURVE_COLUMNS))
        elif span[0] > PLOT_X0 + 0.1 * plot_w:
            failures.append("%s: starts at x %d, want it near the y axis (x %d)"
                            % (name, span[0], PLOT_X0))

    # (c): the peak marker: pixels of its colour, and somewhere a solid 5x5
    # block of them (the circle; its label's strokes are thinner than that).
    red = {(x, y) for x, y, px in pixels(rows, 0, W, 0, H) if near(px, PEAK)}
    solid = [(x, y) for x, y in red
             if all((x + dx, y + dy) in red for dx in range(-2, 3) for dy in range(-2, 3))]
    centre = ("at about (%d, %d)" % (sum(x for x, _ in solid) // len(solid),
                                     sum(y for _, y in solid) // len(solid))
              if solid else "none")
    print("  %-18s %6d pixels, solid 5x5 blocks: %d, %s"
          % ("peak #d62728", len(red), len(solid), centre))
    if len(red) < MIN_PEAK_PIXELS:
        failures.append("peak marker #d62728: %d pixels of that colour, want >= %d"
                        % (len(red), MIN_PEAK_PIXELS))
    if not solid:
        failures.append("peak marker #d62728: no filled circle (no solid 5x5 block)")
    elif not any(PLOT_X0 - 6 <= x <= PLOT_X1 + 6 and PLOT_Y0 - 6 <= y <= PLOT_Y1 + 6
                 for x, y in solid):
        failures.append("peak marker #d62728: the circle is outside the plot")

    # (d): text. The axis lines (x 100, y 400) are black too: the bands stay
    # clear of them.
    bands = (("left margin", 0, 95, 60, 400),
             ("x axis", 0, W, 404, 460),
             ("title", 0, W, 0, 35))
    for name, x0, x1, y0, y1 in bands:
        dark = [(x, y) for x, y, px in pixels(rows, x0, x1, y0, y1) if max(px) < DARK]
        ys = {y for _, y in dark}
        print("  %-18s %6d dark pixels in x %d..%d, y %d..%d (%d rows)"
              % ("text: " + name, len(dark), x0, x1 - 1, y0, y1 - 1, len(ys)))
        if len(dark) < MIN_TEXT_PIXELS[name]:
            failures.append("text (%s): %d dark pixels in x %d..%d, y %d..%d, want >= %d"
                            % (name, len(dark), x0, x1 - 1, y0, y1 - 1, MIN_TEXT_PIXELS[name]))

    if failures:
        for f in failures:
            print("check_png: FAIL: " + f, file=sys.stderr)
        return 1
    print("check_png: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
