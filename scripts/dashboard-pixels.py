#!/usr/bin/python3
"""Counts, in a screenshot of the greylag dashboard, the pixels drawn in
each chart colour, and fails if a colour has fewer than MIN pixels.

Usage: dashboard-pixels.py SCREENSHOT.png COLOURS.json MIN

COLOURS.json maps a name ("hourly deferred", "return delay", ...) to a
colour "#rrggbb". The dashboard draws every chart in shades of its own, so
a colour's pixels show that its chart has content. Bars are drawn with
crisp edges; a tolerance of 3 per channel allows for colour management.
Prints one line per colour, "NAME: N pixels", and exits 1 if any is short.
Needs Pillow (Debian: python3-pil).
"""
import json
import sys

from PIL import Image


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    image = Image.open(sys.argv[1]).convert("RGB")
    colours = json.load(open(sys.argv[2]))
    minimum = int(sys.argv[3])
    wanted = {}
    for name, hex_colour in colours.items():
        value = int(hex_colour.lstrip("#"), 16)
        wanted[name] = ((value >> 16) & 255, (value >> 8) & 255, value & 255)
    counts = {name: 0 for name in wanted}
    # Count each distinct colour once, then match the few hundred distinct
    # colours against the wanted ones.
    for count, rgb in image.getcolors(maxcolors=1 << 24):
        for name, target in wanted.items():
            if all(abs(a - b) <= 3 for a, b in zip(rgb, target)):
                counts[name] += count
    short = False
    for name in sorted(counts):
        ok = counts[name] >= minimum
        short = short or not ok
        print(f"{name}: {counts[name]} pixels{'' if ok else f' (fewer than {minimum})'}")
    width, height = image.size
    print(f"screenshot {width}x{height}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
