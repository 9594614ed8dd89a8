"""A full disk is one clear message, and nothing is half-written: the library, `--out`, settings, exports.

The disk is real: a small tmpfs (tests/small_disk.py says why, and how to run these unprivileged).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import orjson
import pytest
from PIL import Image
from small_disk import PAGE, small_disk

from app.cli import main
from app.services.errors import DiskFull
from app.services.files import atomic_copy, atomic_write
from app.services.library.pngmeta import write_parameters
from app.services.library.store import Library
from app.services.models import JobState
from app.services.settings import AppDirs, Settings, load_settings, save_settings
from contract import Parameters


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def disk(tmp_path):
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture
def full_data(disk, monkeypatch):
    """App dirs whose data dir (library, images, logs) is on the small disk."""
    dirs = AppDirs(disk.root.parent / "config", disk.root / "data").create()
    monkeypatch.setenv("DIFFUSION_DESK_CONFIG_DIR", str(dirs.config_dir))
    monkeypatch.setenv("DIFFUSION_DESK_DATA_DIR", str(dirs.data_dir))
    Library(dirs.data_dir).close()
    return dirs


def _cloud_args(cloud) -> list[str]:
    return ["--endpoint-url", cloud.endpoint_url, "--region", cloud.region]


def test_generating_on_a_full_data_disk_says_so_once_and_sends_nothing(cloud, disk, full_data):
    disk.fill()
    code, out, err = run(*_cloud_args(cloud), "generate", "a lighthouse", "--size", "64x64")
    assert code == 1 and out == ""
    assert err.count("error:") == 1 and "Traceback" not in err and "Logging error" not in err
    assert f"The disk holding {full_data.data_dir} is full, so the library could not be saved." in err
    assert "Nothing was half-written: free some space and try again." in err
    assert cloud.client("s3").list_objects_v2(Bucket=cloud.deployment.bucket, Prefix="requests/")["KeyCount"] == 0
    disk.free()
    with Library(full_data.data_dir) as library:
        assert library.jobs() == []  # no half-recorded job
    code, out, err = run(*_cloud_args(cloud), "generate", "a lighthouse", "--size", "64x64")
    assert code == 0, err


def test_a_full_out_folder_copies_whole_images_only_and_says_how_far_it_got(cloud, dirs, disk):
    args = [*_cloud_args(cloud), "generate", "a harbour", "--size", "256x256", "--seed", "9", "--n", "3"]
    code, out, err = run(*args, "--wait", "--json")
    assert code == 0, err
    sizes = [Path(p).stat().st_size for p in orjson.loads(out)[0]["images"]]
    out_dir = disk.root / "out"
    out_dir.mkdir()
    disk.fill(leave=sizes[0] + sizes[1] // 2)  # room for one image and half of the next

    code, out, err = run(*args, "--out", str(out_dir))
    assert code == 1 and "Traceback" not in err and err.count("error:") == 1
    assert f"The disk holding {out_dir} is full, so " in err and "1 of 3 images were copied" in err
    assert "every one is in the library (`python -m app jobs` lists them)" in err
    (copied,) = disk.files()
    with Image.open(out_dir / Path(copied).name) as image:
        image.load()  # whole, not truncated
    assert not list(out_dir.glob(".*.part"))


def test_a_full_data_disk_during_a_download_keeps_the_job_and_finishes_it_once_there_is_room(cloud, disk, full_data):
    code, out, err = run(*_cloud_args(cloud), "generate", "a harbour", "--size", "512x512", "--json")
    assert code == 0, err
    (job,) = orjson.loads(out)
    cloud.wait_idle()
    disk.fill(leave=8 * PAGE)  # room for the library's few pages, not for a 512×512 image

    code, out, err = run(*_cloud_args(cloud), "jobs", "--json")
    assert "Traceback" not in err and "Logging error" not in err
    with Library(full_data.data_dir) as library:
        kept = library.get_job(job["inference_id"])
    assert kept.state == JobState.QUEUED  # not failed: its images wait in the bucket
    for name in disk.files():  # no temp file left, and any image there is whole
        assert not name.endswith(".part"), name
        if name.endswith(".png"):
            with Image.open(disk.root / name) as image:
                image.load()

    disk.free()
    code, out, err = run(*_cloud_args(cloud), "jobs", "--json")
    (done,) = [j for j in orjson.loads(out) if j["inference_id"] == job["inference_id"]]
    assert done["state"] == "completed" and len(done["images"]) == 1


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda path: atomic_write(path, b"x" * 64 * PAGE), id="atomic_write"),
        pytest.param(lambda path: atomic_copy(path.parent.parent / "source.bin", path), id="atomic_copy"),
        pytest.param(
            lambda path: write_parameters(Image.effect_noise((256, 256), 90).convert("RGB"), Parameters("p"), path),
            id="a PNG with parameters",
        ),
    ],
)
def test_every_atomic_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_temp(disk, write):
    (disk.root.parent / "source.bin").write_bytes(os.urandom(64 * PAGE))
    path = disk.root / "kept.png"
    path.write_bytes(b"the old file")
    disk.fill(leave=4 * PAGE)
    with pytest.raises(DiskFull, match=r"The disk holding .*/disk is full, so kept\.png could not be saved\."):
        write(path)
    assert path.read_bytes() == b"the old file" and disk.files() == ["kept.png"]


def test_settings_on_a_full_disk_keep_the_old_file(disk):
    dirs = AppDirs(disk.root / "config", disk.root / "data").create()
    save_settings(dirs, Settings(region="eu-west-1"))
    disk.fill()
    with pytest.raises(DiskFull):
        save_settings(dirs, Settings(region="eu-west-1", targets=[{"name": f"t{n}" * 50} for n in range(400)]))
    assert load_settings(dirs).region == "eu-west-1" and disk.files() == ["config/settings.json"]


def test_waiting_on_a_full_data_disk_says_the_disk_is_full_not_offline(cloud, disk, full_data):
    """`generate --wait` and the app's tracker: the status line names the full disk, and the job is kept."""
    from app.services.session import Session

    code, out, err = run(*_cloud_args(cloud), "generate", "a harbour", "--size", "512x512", "--json")
    (job,) = orjson.loads(out)
    cloud.wait_idle()
    disk.fill(leave=8 * PAGE)  # room to open the library, not to save the image
    said: list[str] = []
    session = Session.open(
        full_data, endpoint_url=cloud.endpoint_url, region=cloud.region, on_status=lambda s: said.append(s.message)
    )
    try:
        session.tracker.FAST = session.tracker.IDLE = 0.05
        # A step that fails on the disk still lets the wait end (the CLI's --wait, --timeout).
        assert session.tracker.run(until=lambda: len(said) >= 2, deadline=time.monotonic() + 60), said
        assert session.library.get_job(job["inference_id"]).state == JobState.QUEUED
    finally:
        session.close()
    assert said[-1].startswith(f"The disk holding {full_data.data_dir} is full") and "Retrying in" in said[-1]
