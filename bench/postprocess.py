"""Post-processing figures: the guidance's putpixel method, ours, and the floor; then every size.

    .venv/bin/python bench/postprocess.py [--repeat 3] [--max-side 2048]

For each payload (1 × 512², 4 × 768², in JumpStart's json.dumps layout) prints one JSON line:
the reference (json.loads + putpixel + Pillow PNG), ours (contract.read_output + encode_png),
the floor (numpy digit parse with no checks + the same PNG writer), their ratios, and our
peak traced memory. Times are CPU seconds of this process (best of --repeat), so the figures
hold on a machine shared with other work. Targets: ≥ 15× faster than the reference, ≤ 1.5×
the floor, peak ≤ 3× the payload size for 4 × 768².

Then, for each allowed size (square sides up to the contract's limit, 1, 4 and 8 images), one
JSON line with the lossless (`application/json`) payload: its size here (photo-like values), its
worst-case size (contract.output.rgb_output_bytes, what MMS_MAX_RESPONSE_SIZE must allow), the
Lambda-side decode + PNG encode CPU seconds, and the decoder's peak traced memory beside the body.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contract import LIMITS, encode_output, encode_png, read_output  # noqa: E402
from contract.output import MAX_OUTPUT_BYTES, rgb_output_bytes  # noqa: E402

PAYLOADS = ((1, 512), (4, 768))
SIDES = (512, 768, 1024, 1536, 2048)
COUNTS = (1, 4, int(LIMITS["num_images_per_prompt"].high))
TARGETS = {"speedup_min": 15.0, "vs_floor_max": 1.5, "peak_vs_payload_max": 3.0}
BAND = 1 << 18  # the same piece size as contract.output's
PARAMETERS = "a lighthouse at dusk\nSteps: 30, CFG scale: 7.5, Seed: 42, Size: 768x768"


def payload(count: int, size: int) -> bytes:
    """Photo-like images (smooth colour plus fine grain), laid out as json.dumps writes them."""
    rng = np.random.default_rng(size * 10 + count)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    for _ in range(count):
        base = np.stack([x, y, (x + y) / 2], axis=-1) * rng.uniform(120, 255, 3)
        grain = rng.normal(0, 10, (size, size, 3))
        images.append(np.clip(base + grain, 0, 255).astype(np.uint8))
    return encode_output(images, "a lighthouse at dusk").replace(b",", b", ").replace(b'":', b'": ')


def reference(body: bytes) -> list[bytes]:
    """The AWS guidance's Lambda: json.loads, one putpixel per pixel, Pillow's default PNG."""
    files = []
    for pixels in json.loads(body)["generated_images"]:
        image = Image.new("RGB", (len(pixels[0]), len(pixels)))
        for y, row in enumerate(pixels):
            for x, pixel in enumerate(row):
                image.putpixel((x, y), tuple(pixel))
        out = io.BytesIO()
        image.save(out, format="PNG")
        files.append(out.getvalue())
    return files


def ours(body: bytes) -> list[bytes]:
    return [encode_png(image, PARAMETERS) for image in read_output(body).images]


def floor(body: bytes, count: int, size: int) -> list[bytes]:
    """Numpy digit parse with no structure or range checks, in cache-sized pieces, then the same PNG writer."""
    compact = body.translate(None, b" \t\r\n")
    values = np.empty(count * size * size * 3, dtype=np.uint8)
    filled, start = 0, 0
    while start < len(compact):
        cut = compact.find(b"],[", start + BAND)
        stop = len(compact) if cut < 0 else cut + 1
        text = np.frombuffer(compact, dtype=np.uint8, count=stop - start, offset=start)
        digit = (text - ord("0")) < 10
        ends = np.flatnonzero(digit[:-1] > digit[1:])
        value = text[ends].astype(np.uint16) - ord("0")
        for weight, back in ((10, 1), (100, 2)):
            place = text[ends - back] - ord("0")
            place *= digit[ends - 1] & digit[ends - back]
            value += place * np.uint16(weight)
        values[filled : filled + value.size] = value
        filled += value.size
        start = stop
    images = values.reshape(count, size, size, 3)
    return [encode_png(image, PARAMETERS) for image in images]


def cpu_seconds(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def measure(count: int, size: int, repeat: int) -> dict[str, object]:
    body = payload(count, size)
    assert all(
        np.array_equal(np.asarray(Image.open(io.BytesIO(a))), np.asarray(Image.open(io.BytesIO(b))))
        for a, b in zip(ours(body), floor(body, count, size), strict=True)
    )
    reference_s = cpu_seconds(lambda: reference(body), 1)
    ours_s = cpu_seconds(lambda: ours(body), repeat)
    floor_s = cpu_seconds(lambda: floor(body, count, size), repeat)
    tracemalloc.start()
    ours(body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures = {
        "payload": f"{count}x{size}x{size}",
        "payload_mb": round(len(body) / 1e6, 2),
        "reference_s": round(reference_s, 3),
        "ours_s": round(ours_s, 4),
        "floor_s": round(floor_s, 4),
        "speedup": round(reference_s / ours_s, 1),
        "vs_floor": round(ours_s / floor_s, 2),
        "peak_mb": round(peak / 1e6, 1),
        "peak_vs_payload": round(peak / len(body), 2),
    }
    figures["targets_met"] = (
        figures["speedup"] >= TARGETS["speedup_min"]
        and figures["vs_floor"] <= TARGETS["vs_floor_max"]
        and figures["peak_vs_payload"] <= TARGETS["peak_vs_payload_max"]
    )
    return figures


def measure_size(count: int, size: int, repeat: int) -> dict[str, object]:
    """What one allowed size costs on the way to PNGs: payload bytes and Lambda-side CPU time."""
    body = payload(count, size)
    seconds = cpu_seconds(lambda: ours(body), repeat)
    tracemalloc.start()
    ours(body)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    worst = rgb_output_bytes(size, size, count)
    return {
        "size": f"{count}x{size}x{size}",
        "payload_mb": round(len(body) / 1e6, 1),
        "worst_case_mb": round(worst / 1e6, 1),
        "decode_encode_s": round(seconds, 3),
        "peak_mb": round(peak / 1e6, 1),
        "peak_vs_payload": round(peak / len(body), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours and the floor; the best counts")
    parser.add_argument("--max-side", type=int, default=int(LIMITS["width"].high), help="largest square side measured")
    args = parser.parse_args(argv)
    for count, size in PAYLOADS:
        print(json.dumps(measure(count, size, args.repeat)), flush=True)
    print(json.dumps({"max_output_mb": round(MAX_OUTPUT_BYTES / 1e6, 1)}), flush=True)
    for size in (side for side in SIDES if side <= args.max_side):
        for count in COUNTS:
            print(json.dumps(measure_size(count, size, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
