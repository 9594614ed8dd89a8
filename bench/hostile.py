"""Hostile inputs: the peak memory of every decode path on crafted PNGs and model outputs.

    .venv/bin/python bench/hostile.py [--side 13000] [--only import,lambda-jpeg]

Makes the inputs in a temporary folder: a SIDE × SIDE PNG of one colour (about 0.5 MB on disk,
just under Pillow's own hard limit at 13000), a small PNG whose `parameters` chunk is 10 MB, a
small PNG whose `parameters` hold terminal escape sequences, model outputs holding the big PNG
base64-encoded in place of a JPEG (one, and three), and one output of 10,000 1 × 1 images.

Each case runs in a child process of its own (the CLI's `import`, the library's download and
thumbnail, the viewer's read, the Lambda's handler over an in-memory S3) and prints one JSON
line: the child's peak RSS (VmHWM), the peak above a child that only imports the same modules, the
seconds, what it printed (bytes, control characters) and its outcome. The app's memory goal is
400 MB; the Lambda's memory is 2048 MB.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contract import PNG_SIGNATURE  # noqa: E402
from contract.png import png_chunk, with_text_chunks  # noqa: E402

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\rreal prompt\nSteps: 30, Seed: 1, Size: 8x8"
SMALL_REQUEST = {"prompt": "p", "width": 512, "height": 512, "num_images_per_prompt": 1}

#: Python run in each child: imports first (the baseline), then the case. argv: case, input path, temp dir.
CHILD = r"""
import os, sys, time
case, path, tmp = sys.argv[1:4]
mode = os.environ["BENCH_IMPORTS"]
if mode == "app":
    from app.cli import main
    from app.services.library import Library
    from app.services.library.thumbnails import ThumbnailCache
elif mode == "qt":
    from app.ui.gallery.thumbnails import read_image
else:
    import io, json
    from lambdas.extract_image import index
    from contract import build_notification
start = time.perf_counter()
outcome = "ok"
if case == "noop":
    pass
elif case == "import":
    code = main(["import", path])
    outcome = f"exit {code}"
elif case == "jobs":
    code = main(["jobs"])
    outcome = f"exit {code}"
elif case == "download":
    import shutil
    from app.services.models import Job, JobState, Origin
    from contract import GenerationRequest, Manifest, STATUS_COMPLETED

    class Copier:
        def download_file(self, bucket, key, filename, Config=None):
            shutil.copyfile(path, filename)

    job = Job("20261203T120000000Z-hostile", GenerationRequest("p"), "t", JobState.QUEUED, origin=Origin.REMOTE)
    manifest = Manifest(job.inference_id, STATUS_COMPLETED, (f"images/{job.inference_id}/0.png",), {"prompt": "p"})
    try:
        with Library(tmp) as library:
            outcome = f"{len(library.download_job_images(job, Copier(), 'b', manifest))} image(s)"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
elif case == "thumbnail":
    try:
        ThumbnailCache(tmp).thumbnail_path(path)
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
elif case == "viewer":
    try:
        image = read_image(path)
        outcome = f"{image.width()}x{image.height()} decoded"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
else:

    class S3:
        def __init__(self, objects):
            self.objects, self.puts, self.manifest = objects, 0, b""

        def get_object(self, Bucket, Key):
            return {"ContentLength": len(self.objects[Key]), "Body": io.BytesIO(self.objects[Key])}

        def put_object(self, Bucket, Key, Body, ContentType):
            self.puts += 1
            if Key.endswith("manifest.json"):
                self.manifest = Body

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "extract-image", 2048, "bench"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:extract-image"

    job = "20261203T120000000Z-hostile"
    index.s3 = S3(
        {
            f"requests/{job}.json": open(os.path.join(os.path.dirname(path), "request.json"), "rb").read(),
            f"output/{job}.out": open(path, "rb").read(),
        }
    )
    note = build_notification(
        inference_id=job, status="Completed", region="us-east-1", endpoint_name="e",
        input_location=f"s3://bench-bucket/requests/{job}.json", received_time="2026-12-03T12:00:00.000Z",
        event_time="2026-12-03T12:00:01.000Z", output_location=f"s3://bench-bucket/output/{job}.out",
    )
    record = {"EventSource": "aws:sns", "Sns": {"Type": "Notification", "MessageId": "m", "Message": json.dumps(note),
              "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Timestamp": "2026-12-03T12:00:01.000Z"}}
    try:
        index.lambda_handler({"Records": [record]}, Context())
        manifest = json.loads(index.s3.manifest or b"{}")
        outcome = f"{index.s3.puts} objects written; manifest {manifest.get('status')}: {manifest.get('reason', '')}"
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {exc}"
seconds = time.perf_counter() - start
# VmHWM is this program's own peak: ru_maxrss would start from the parent's RSS at fork (Linux keeps it across exec).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("\nBENCH " + repr((peak, seconds, outcome)), file=sys.stderr)
"""

#: (name, imports, input file, what it stands for)
CASES = (
    ("import", "app", "huge.png", "CLI import of a SIDE² PNG"),
    ("import", "app", "long_text.png", "CLI import of a PNG with a 10 MB parameters chunk"),
    ("import", "app", "escapes.png", "CLI import of a PNG whose parameters hold escape sequences"),
    ("jobs", "app", "escapes.png", "CLI jobs after a job from elsewhere with an escape-laden prompt"),
    ("download", "app", "huge.png", "download of a job from elsewhere whose image is a SIDE² PNG"),
    ("thumbnail", "app", "huge.png", "thumbnail of a SIDE² PNG"),
    ("viewer", "qt", "huge.png", "the viewer's read of a SIDE² PNG"),
    ("lambda", "lambda", "jpeg1.out", "extract_image on one SIDE² PNG disguised as a base64 JPEG"),
    ("lambda", "lambda", "jpeg3.out", "extract_image on three of them in one output"),
    ("lambda", "lambda", "many.out", "extract_image on 10,000 1x1 images in one output"),
)


def big_png(side: int) -> bytes:
    """A side × side RGB PNG of one colour, compressed a row at a time (never held decoded)."""
    deflate = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * (3 * side)
    data = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
    png = PNG_SIGNATURE + header + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    return with_text_chunks(png, {"parameters": "a huge image\nSteps: 30, Seed: 1"})


def small_png(parameters: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(out, format="PNG")
    return with_text_chunks(out.getvalue(), {"parameters": parameters})


def make_inputs(folder: Path, side: int) -> None:
    huge = big_png(side)
    (folder / "huge.png").write_bytes(huge)
    (folder / "long_text.png").write_bytes(small_png("x" * 10_000_000 + "\nSteps: 30, Seed: 1"))
    (folder / "escapes.png").write_bytes(small_png(ESCAPES))
    disguised = base64.b64encode(huge).decode()
    for count in (1, 3):
        body = json.dumps({"generated_images": [disguised] * count, "prompt": "p"})
        (folder / f"jpeg{count}.out").write_text(body)
    many = json.dumps({"generated_images": [[[[1, 2, 3]]]] * 10_000, "prompt": "p"})
    (folder / "many.out").write_text(many)
    (folder / "request.json").write_text(json.dumps(SMALL_REQUEST))


def plant_escaped_job(data_dir: Path) -> None:
    """A job from elsewhere whose request holds escape sequences, as the tracker records it."""
    from app.services.library import Library
    from app.services.library.schema import request_as_sent
    from app.services.models import Job, JobState, Origin

    with Library(data_dir) as library:
        request = request_as_sent({"prompt": ESCAPES})
        message = "Sent from another computer or script.\x1b[2J"
        library.add_job(
            Job("20261203T120000000Z-planted", request, "t", JobState.QUEUED, message=message, origin=Origin.REMOTE)
        )


def run(case: str, imports: str, path: Path, work: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(dir=work))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_IMPORTS": imports,
        "QT_QPA_PLATFORM": "offscreen",
        "DIFFUSION_DESK_DATA_DIR": str(tmp / "data"),
        "DIFFUSION_DESK_CONFIG_DIR": str(tmp / "config"),
        "BUCKET_NAME": "bench-bucket",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    if case == "jobs":
        plant_escaped_job(tmp / "data")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(path), str(tmp)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=900,
    )
    marker = proc.stderr.rfind(b"\nBENCH ")
    stderr = proc.stderr.decode("utf-8", "replace")
    if marker < 0:
        return {"peak_kb": None, "seconds": None, "outcome": f"crashed ({proc.returncode}): {stderr[-300:]}"}
    peak_kb, seconds, outcome = eval(proc.stderr[marker + 7 :].decode())  # noqa: S307 (our own child's repr)
    printed = proc.stdout + proc.stderr[:marker]
    controls = sum(1 for byte in printed if byte < 32 and byte not in (9, 10))
    return {
        "peak_kb": peak_kb,
        "seconds": round(seconds, 2),
        "outcome": outcome[:160],
        "printed_bytes": len(printed),
        "control_chars_printed": controls,
        "pillow_warning": "DecompressionBombWarning" in stderr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=13000)
    parser.add_argument("--only", default="", help="comma-separated case names (import, jobs, download, …)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        make_inputs(work, args.side)
        baselines = {}
        for imports in ("app", "qt", "lambda"):
            baselines[imports] = run("noop", imports, work / "huge.png", work)["peak_kb"]
            print(json.dumps({"baseline": imports, "peak_rss_mb": round(baselines[imports] / 1024)}), flush=True)
        for case, imports, file, what in CASES:
            if only and case not in only:
                continue
            result = run(case, imports, work / file, work)
            peak = result.pop("peak_kb")
            line = {
                "case": what.replace("SIDE", str(args.side)),
                "input": f"{file} ({(work / file).stat().st_size / 1e3:.0f} KB)",
                "peak_rss_mb": peak and round(peak / 1024),
                "added_mb": peak and round((peak - baselines[imports]) / 1024),
                **result,
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
