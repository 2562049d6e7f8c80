#!/usr/bin/python3
"""Writes the generated test images for image_test/transforms_test (issue #3).

Usage: make_test_images.py OUT_DIR
Creates OUT_DIR/expected/* (SixteenBitMode::scale references: round(v / 257) of the 16-bit samples),
OUT_DIR/refused/* (files PIL reads but we refuse on purpose), OUT_DIR/generated/*  (images PIL can open: CMYK/EXIF JPEGs, P/LA/16-bit/interlaced PNGs,
tiny and extreme sizes, TIFF/BMP/WebP) and OUT_DIR/damaged/* (files PIL refuses: empty, truncated,
text named .png, decompression bomb header, corrupt IDAT). Deterministic (fixed seeds).
"""
import hashlib
import os
import shutil
import struct
import sys
import zlib

import numpy as np
from PIL import Image

rng = np.random.RandomState(1234)


def texture(h, w, channels=3):
    """A smooth-plus-noise test pattern with edges (exercises every resampling weight)."""
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        base = 127 + 100 * np.sin(x / (3.0 + c) + y / (5.0 + 2 * c))
        base += 40 * ((x // 7 + y // 5 + c) % 2) - 20
        base += rng.randint(-30, 31, size=(h, w))
        planes.append(np.clip(base, 0, 255))
    return np.stack(planes, axis=-1).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path, rows_bytes_fn, width, height, bit_depth, color_type, extra_chunks=(), interlace=False, arr=None):
    """Minimal PNG writer (filter 0) for the bit depths / colour types PIL cannot write."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    raw = b""
    if not interlace:
        for y in range(height):
            raw += b"\x00" + rows_bytes_fn(arr[y:y + 1])
    else:  # Adam7
        for xs, ys, xstep, ystep in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                                     (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = arr[ys::ystep, xs::xstep]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for y in range(sub.shape[0]):
                raw += b"\x00" + rows_bytes_fn(sub[y:y + 1])
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    for kind, payload in extra_chunks:
        data += png_chunk(kind, payload)
    data += png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def be16(a):
    return a.astype(">u2").tobytes()


def packbits(a, bits):
    """Packs one row of small integers MSB first, as PNG stores sub-byte samples."""
    row = a.reshape(-1)
    per = 8 // bits
    out = bytearray()
    for i in range(0, len(row), per):
        v = 0
        chunk = list(row[i:i + per]) + [0] * (per - len(row[i:i + per]))
        for s in chunk:
            v = (v << bits) | int(s)
        out.append(v)
    return bytes(out)


def make_generated(out):
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    rgb = texture(211, 317)
    # JPEG variants.
    Image.fromarray(rgb).save(p("rgb_420.jpg"), quality=90)
    Image.fromarray(rgb).save(p("rgb_444.jpg"), quality=95, subsampling=0)
    Image.fromarray(rgb).save(p("rgb_422.jpg"), quality=85, subsampling=1)
    Image.fromarray(rgb).save(p("progressive.jpg"), quality=90, progressive=True)
    Image.fromarray(rgb[:, :, 0]).save(p("grey.jpg"), quality=90)
    cmyk = np.concatenate([texture(150, 190), texture(150, 190, 1)], axis=-1)
    Image.fromarray(cmyk, "CMYK").save(p("cmyk.jpg"), quality=92)  # PIL writes an Adobe marker
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(texture(40, 64)).save(p(f"exif_orientation_{orientation}.jpg"), quality=90,
                                              exif=exif.tobytes())
    # Sizes: 1×1, 7×3000, exactly 256 short side, already 256 on the short side and the long side
    # odd (crop rounding), tiny images that are up-scaled.
    Image.fromarray(texture(1, 1)).save(p("one_by_one.png"))
    Image.fromarray(texture(1, 1)).save(p("one_by_one.jpg"), quality=90)
    Image.fromarray(texture(3000, 7)).save(p("strip_7x3000.png"))
    Image.fromarray(texture(7, 3000)).save(p("strip_3000x7.jpg"), quality=90)
    Image.fromarray(texture(256, 391)).save(p("short_side_256.jpg"), quality=90)
    Image.fromarray(texture(256, 256)).save(p("square_256.png"))
    Image.fromarray(texture(224, 224)).save(p("square_224.png"))
    Image.fromarray(texture(333, 501)).save(p("odd_333x501.jpg"), quality=90)
    Image.fromarray(texture(4, 5)).save(p("tiny_5x4.png"))
    Image.fromarray(texture(13, 9)).save(p("tiny_9x13.jpg"), quality=90)
    Image.fromarray(texture(100, 150)).save(p("small_150x100.png"))
    # PNG modes PIL writes itself.
    Image.fromarray(rgb[:, :, 0]).save(p("grey.png"))
    Image.fromarray(np.dstack([rgb[:, :, 0], rgb[:, :, 1]]), "LA").save(p("la.png"))
    Image.fromarray(np.dstack([rgb, rgb[:, :, :1]]), "RGBA").save(p("rgba.png"))
    Image.fromarray(rgb[:, :, 0] > 128).save(p("bilevel.png"))
    pal = Image.fromarray(rgb).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    pal.info["transparency"] = bytes([0, 64, 128, 255, 10])
    pal.save(p("palette_trns.png"), transparency=bytes([0, 64, 128, 255, 10]))
    pal.save(p("palette_4bit.png"), bits=4)
    Image.fromarray(rgb).quantize(colors=200).save(p("palette_200.png"))
    grey_t = Image.fromarray(rgb[:, :, 2])
    grey_t.save(p("grey_trns.png"), transparency=17)
    Image.fromarray(rgb).save(p("rgb_trns.png"), transparency=(10, 20, 30))
    g16 = (rgb[:, :, 0].astype(np.uint16) * 3).astype(np.uint16)  # many values above 255
    Image.fromarray(g16).save(p("grey16.png"))
    # PNG kinds written by hand.
    h, w = 97, 131
    a16 = (texture(h, w, 4).astype(np.uint16) * 257 + rng.randint(0, 257, size=(h, w, 4))).astype(np.uint16)
    write_png(p("rgb16.png"), be16, w, h, 16, 2, arr=a16[:, :, :3])
    expected = os.path.join(os.path.dirname(out), "expected")
    os.makedirs(expected, exist_ok=True)
    scaled = np.floor(a16.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)  # never exactly .5: 257 is odd
    scaled[:, :, :3].tofile(os.path.join(expected, "rgb16.png.scaled.rgb"))
    np.repeat(scaled[:, :, :1], 3, axis=2).tofile(os.path.join(expected, "la16.png.scaled.rgb"))
    np.repeat(scaled[:, :, :1], 3, axis=2).tofile(os.path.join(expected, "grey16_full.png.scaled.rgb"))
    write_png(p("rgba16.png"), be16, w, h, 16, 6, arr=a16)
    write_png(p("la16.png"), be16, w, h, 16, 4, arr=a16[:, :, :2])
    write_png(p("grey16_full.png"), be16, w, h, 16, 0, arr=a16[:, :, 0])
    small = texture(h, w, 1)[:, :, 0]
    write_png(p("grey2.png"), lambda r: packbits(r >> 6, 2), w, h, 2, 0, arr=small)
    write_png(p("grey4.png"), lambda r: packbits(r >> 4, 4), w, h, 4, 0, arr=small)
    write_png(p("interlaced_rgb.png"), lambda r: r.tobytes(), w, h, 8, 2, interlace=True,
              arr=texture(h, w))
    write_png(p("interlaced_grey16.png"), be16, w, h, 16, 0, interlace=True, arr=a16[:, :, 3] // 128)
    # Palette with 4 entries but indices up to 7 (Pillow >= 10 shows the missing entries black, 9 grey).
    idx = (small >> 5).astype(np.uint8)
    plte = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 0])
    write_png(p("palette_short.png"), lambda r: packbits(r, 4), w, h, 4, 3,
              extra_chunks=[(b"PLTE", plte), (b"tRNS", bytes([0, 128]))], arr=idx)
    # Other formats (decoded through OpenCV).
    Image.fromarray(rgb).save(p("rgb.tif"))
    Image.fromarray(rgb).save(p("rgb_lzw.tiff"), compression="tiff_lzw")
    Image.fromarray(rgb).save(p("rgb.bmp"))
    Image.fromarray(rgb[:, :, 1]).save(p("grey.bmp"))
    Image.fromarray(rgb).save(p("rgb_lossless.webp"), lossless=True)
    Image.fromarray(rgb).save(p("rgb_lossy.webp"), quality=80)
    Image.fromarray(np.dstack([rgb, rgb[:, :, :1]]), "RGBA").save(p("rgba.webp"), lossless=True)
    Image.fromarray(rgb[:, :, 2]).save(p("grey.tif"))
    pal.save(p("palette.bmp"))
    pal.save(p("palette.tif"))
    # Format from content: a PNG named .jpg.
    Image.fromarray(rgb).save(p("png_named.jpg"), format="PNG")


def make_damaged(out, sample_jpeg):
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    open(p("zero_bytes.jpg"), "wb").close()
    with open(sample_jpeg, "rb") as f:
        jpeg = f.read()
    with open(p("truncated.jpg"), "wb") as f:
        f.write(jpeg[: len(jpeg) // 2])
    buf = Image.fromarray(texture(120, 160))
    buf.save(p("_progressive_full.jpg"), quality=90, progressive=True)
    with open(p("_progressive_full.jpg"), "rb") as f:
        prog = f.read()
    os.remove(p("_progressive_full.jpg"))
    with open(p("truncated_progressive.jpg"), "wb") as f:
        f.write(prog[: len(prog) * 2 // 3])
    with open(p("text.png"), "w") as f:
        f.write("this is not an image, only text with an image extension\n")
    # A valid-looking PNG whose IHDR declares 60000 × 60000 = 3.6 gigapixels.
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    with open(p("bomb_60000x60000.png"), "wb") as f:
        f.write(bomb + png_chunk(b"IEND", b""))
    # Corrupt IDAT: valid CRC over garbage deflate data.
    arr = texture(64, 64)
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(64))
    z = bytearray(zlib.compress(raw))
    for i in range(10, len(z) - 10, 7):
        z[i] ^= 0x5A
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    with open(p("corrupt_idat.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", bytes(z))
                + png_chunk(b"IEND", b""))
    # A truncated PNG (the IDAT chunk cut in the middle).
    Image.fromarray(texture(80, 90)).save(p("_full.png"))
    with open(p("_full.png"), "rb") as f:
        png = f.read()
    os.remove(p("_full.png"))
    with open(p("truncated.png"), "wb") as f:
        f.write(png[: len(png) // 2])
    # RGBA TIFF with unassociated alpha: PIL reads it, OpenCV would premultiply it: refused by us
    # (kept out of damaged/, which pil_reference.py lists as files PIL refuses).
    refused = os.path.join(os.path.dirname(out), "refused")
    os.makedirs(refused, exist_ok=True)
    Image.fromarray(np.dstack([texture(30, 40), texture(30, 40, 1)]), "RGBA").save(
        os.path.join(refused, "rgba_unassociated.tif"))
    # A JPEG header only (SOI + garbage).
    with open(p("jpeg_magic_only.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + b"\x00" * 20)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_test_images.py OUT_DIR SAMPLE_JPEG")
    out = sys.argv[1]
    if not os.path.isfile(sys.argv[2]):
        sys.exit(f"make_test_images.py: sample JPEG '{sys.argv[2]}' does not exist (install Debian's opencv-doc)")
    with open(__file__, "rb") as f:
        stamp = hashlib.sha256(f.read()).hexdigest()
    stamp_path = os.path.join(out, "stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        print("make_test_images.py: test images are up to date")
        return
    for sub in ("generated", "damaged", "refused", "expected"):  # no stale files from older versions
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    make_generated(os.path.join(out, "generated"))
    make_damaged(os.path.join(out, "damaged"), sys.argv[2])
    with open(stamp_path, "w") as f:
        f.write(stamp)


if __name__ == "__main__":
    main()
