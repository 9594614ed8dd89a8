"""extract_image runs with only what its Lambda holds: its bundle, the runtime's boto3, the Powertools layer.

The bundle is what `infra.parts.function_code.PipBundling` makes: the function's folder, the contract,
and the wheels of the contract's and the function's requirements. Here those packages (and what they
require) are linked into a folder of their own and the handler runs in a Python without site-packages,
on a crafted output (a 13000² PNG as a base64 JPEG) and a good one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.config import load_config
from infra.parts.function_code import ROOT, PipBundling

#: What the Lambda environment brings besides the bundle: the runtime's SDK and the Powertools layer.
PROVIDED = ("boto3", "aws-lambda-powertools")

CHILD = r"""
import base64, io, json, struct, sys, zlib
from PIL import Image
from contract import PNG_SIGNATURE, build_notification
from contract.png import png_chunk
import index

header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 13000, 13000, 8, 2, 0, 0, 0))
bomb = PNG_SIGNATURE + header + png_chunk(b"IDAT", zlib.compress(b"\0" * 39001)) + png_chunk(b"IEND", b"")
jpeg = io.BytesIO()
Image.new("RGB", (64, 64), (9, 9, 9)).save(jpeg, format="JPEG")
outputs = {"bomb": base64.b64encode(bomb).decode(), "good": base64.b64encode(jpeg.getvalue()).decode()}

class S3:
    def __init__(self):
        self.objects = {}
    def get_object(self, Bucket, Key):
        return {"ContentLength": len(self.objects[Key]), "Body": io.BytesIO(self.objects[Key])}
    def put_object(self, Bucket, Key, Body, ContentType):
        self.objects[Key] = Body

index.s3 = S3()
statuses = {}
for name, image in outputs.items():
    job = f"20261203T120000000Z-{name}"
    index.s3.objects[f"requests/{job}.json"] = json.dumps({"prompt": "p", "width": 64, "height": 64}).encode()
    index.s3.objects[f"output/{job}.out"] = json.dumps({"generated_images": [image], "prompt": "p"}).encode()
    note = build_notification(
        inference_id=job, status="Completed", region="us-east-1", endpoint_name="e",
        input_location=f"s3://b/requests/{job}.json", received_time="2026-12-03T12:00:00Z",
        event_time="2026-12-03T12:00:01Z", output_location=f"s3://b/output/{job}.out",
    )
    manifest = index.process(index.read_job(json.dumps(note)), "b")
    statuses[name] = [manifest.status, manifest.reason]
print(json.dumps({"statuses": statuses, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


FAMILIES_CHILD = r"""
import base64, io, json, struct, sys, zlib
from PIL import Image
from contract import PNG_SIGNATURE, build_notification
from contract.png import png_chunk
import index

def b64(picture, kind="PNG"):
    buffer = io.BytesIO()
    picture.save(buffer, kind)
    return base64.b64encode(buffer.getvalue()).decode()

header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 13000, 13000, 8, 2, 0, 0, 0))
bomb = base64.b64encode(PNG_SIGNATURE + header + png_chunk(b"IDAT", zlib.compress(b"\0" * 39001))
                        + png_chunk(b"IEND", b"")).decode()
source = b64(Image.new("RGB", (64, 64), (200, 30, 30)))
mask = Image.new("L", (64, 64), 0)
mask.paste(255, (0, 0, 32, 32))
sdxl = {"text_prompts": [{"text": "fox", "weight": 1.0}], "width": 1024, "height": 1024, "sampler": "K_EULER_ANCESTRAL"}
jobs = {
    "upscale": ({"prompt": "p", "image": source},
                {"generated_images": [b64(Image.new("RGB", (256, 256)), "JPEG")], "prompt": "p"}),
    "inpaint": ({"prompt": "p", "image": source, "mask_image": b64(mask)},
                {"generated_images": [[[[1, 2, 3]] * 64] * 64], "prompt": "p"}),
    "sdxl": (sdxl, {"artifacts": [{"base64": b64(Image.new("RGB", (1024, 1024))), "seed": 4,
                                   "finishReason": "SUCCESS"}]}),
    "sdxl-bomb": (sdxl, {"artifacts": [{"base64": bomb, "seed": 4, "finishReason": "SUCCESS"}]}),
}

class S3:
    def __init__(self):
        self.objects = {}
    def get_object(self, Bucket, Key):
        return {"ContentLength": len(self.objects[Key]), "Body": io.BytesIO(self.objects[Key])}
    def put_object(self, Bucket, Key, Body, ContentType):
        self.objects[Key] = Body

index.s3 = S3()
statuses, texts = {}, {}
for name, (request, output) in jobs.items():
    job = f"20261203T120000000Z-{name}"
    index.s3.objects[f"requests/{job}.json"] = json.dumps(request).encode()
    index.s3.objects[f"output/{job}.out"] = json.dumps(output).encode()
    note = build_notification(
        inference_id=job, status="Completed", region="us-east-1", endpoint_name="e",
        input_location=f"s3://b/requests/{job}.json", received_time="2026-12-03T12:00:00Z",
        event_time="2026-12-03T12:00:01Z", output_location=f"s3://b/output/{job}.out",
    )
    manifest = index.process(index.read_job(json.dumps(note)), "b")
    size = [manifest.width, manifest.height] if manifest.width else None
    statuses[name] = [manifest.status, manifest.reason, size]
    if manifest.image_keys:
        texts[name] = Image.open(io.BytesIO(index.s3.objects[manifest.image_keys[0]])).text["parameters"]
print(json.dumps({"statuses": statuses, "texts": texts, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _closure(names: list[str]) -> list[metadata.Distribution]:
    """These distributions and everything they require (no extras), as installed here."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        found[name] = dist = metadata.distribution(name)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def _link_packages(dists: list[metadata.Distribution], site: Path) -> None:
    for dist in dists:
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith(".dist-info") or top in ("..", "__pycache__") or (site / top).exists():
                continue
            source = Path(dist.locate_file(top))
            if source.exists():
                (site / top).symlink_to(source)


def _run_in_lambda_environment(tmp_path: Path, code: str) -> dict:
    """Run `code` with only the bundle and the Lambda's own packages importable; its last line's JSON."""
    function_dir = ROOT / "lambdas" / "extract_image"
    bundle, site = tmp_path / "bundle", tmp_path / "site"
    shutil.copytree(function_dir, bundle, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "contract", bundle / "contract", ignore=shutil.ignore_patterns("__pycache__"))
    site.mkdir()
    requirements = PipBundling(function_dir, load_config().function).requirements()
    _link_packages(_closure([*requirements, *PROVIDED]), site)

    run = subprocess.run(
        [sys.executable, "-S", "-E", "-c", f"import sys; sys.path[:0] = [{str(bundle)!r}, {str(site)!r}]\n{code}"],
        cwd=tmp_path,
        env={"BUCKET_NAME": "b", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "ERROR"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_handler_refuses_a_crafted_output_and_decodes_a_good_one_with_only_its_environment(tmp_path):
    result = _run_in_lambda_environment(tmp_path, CHILD)

    bomb, good = result["statuses"]["bomb"], result["statuses"]["good"]
    assert bomb[0] == "failed" and "13000 × 13000 pixels" in bomb[1]
    assert good == ["completed", None]
    assert not {"app", "infra", "tools"} & set(result["modules"])


def test_the_handler_reads_every_model_familys_output_with_only_its_environment(tmp_path):
    result = _run_in_lambda_environment(tmp_path, FAMILIES_CHILD)

    assert result["statuses"] == {
        "upscale": ["completed", None, [256, 256]],
        "inpaint": ["completed", None, [64, 64]],
        "sdxl": ["completed", None, [1024, 1024]],
        "sdxl-bomb": [
            "failed",
            "Image 1 is 13000 × 13000 pixels; the request allows at most 1024 × 1024, so it was not decoded.",
            None,
        ],
    }
    assert "Sampler: Euler a" in result["texts"]["sdxl"] and "Upscale by: 4" in result["texts"]["upscale"]
    assert not {"app", "infra", "tools"} & set(result["modules"])
