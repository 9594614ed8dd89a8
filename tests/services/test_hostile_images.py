"""Images that are small on disk and huge decoded are refused from their header on every decode path."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import pytest
from PIL import Image

from app.cli import main
from app.services.errors import UserError
from app.services.library import MAX_IMAGE_PIXELS, Library, checked_size
from app.services.library.thumbnails import ThumbnailCache
from app.services.models import Job, JobState, Origin
from contract import (
    PNG_SIGNATURE,
    GenerationRequest,
    Manifest,
    image_key,
    new_inference_id,
    with_text_chunks,
)
from contract.png import png_chunk


def one_colour_png(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A width × height RGB PNG of one colour, compressed a row at a time; `rows` stops the data early."""
    deflate = zlib.compressobj(1)
    row = b"\x00" + b"\x80" * (3 * width)
    data = b"".join(deflate.compress(row) for _ in range(height if rows is None else rows)) + deflate.flush()
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png = PNG_SIGNATURE + header + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    return with_text_chunks(png, {"parameters": "a huge image\nSteps: 30, Seed: 1"})


#: 20 megapixels: 1.2 MB on disk, 80 MB decoded as RGBA.
OVER = (5000, 4000)


@pytest.fixture
def huge(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(one_colour_png(*OVER))
    return path


def _import(library, path):
    return library.import_png(path)


def _thumbnail(library, path):
    return library.thumbnail_path(path)


def _download(library, path, cloud):
    s3, bucket = cloud.client("s3"), cloud.deployment.bucket
    job = Job(new_inference_id(), GenerationRequest("p"), "test", JobState.QUEUED, origin=Origin.REMOTE)
    s3.put_object(Bucket=bucket, Key=image_key(job.inference_id, 0), Body=path.read_bytes())
    manifest = Manifest(job.inference_id, "completed", (image_key(job.inference_id, 0),), {"prompt": "p"})
    return library.download_job_images(job, s3, bucket, manifest)


PATHS = {"import": _import, "thumbnail": _thumbnail}


@pytest.mark.parametrize("path_name", PATHS)
def test_an_image_above_the_pixel_cap_is_refused_and_leaves_nothing(tmp_path, huge, path_name):
    with Library(tmp_path / "data") as library:
        with pytest.raises(UserError, match=r"5000 × 4000 pixels \(20 megapixels\).*at most 16\.8 megapixels"):
            PATHS[path_name](library, huge)
        assert library.count() == 0
        left = [p for p in (tmp_path / "data").rglob("*.png")]
        assert left == []


def test_a_job_from_elsewhere_whose_image_is_above_the_cap_is_not_kept(tmp_path, huge, cloud):
    with Library(tmp_path / "data") as library:
        with pytest.raises(UserError, match=r"The image images/.*/0\.png from the cloud is 5000 × 4000 pixels"):
            _download(library, huge, cloud)
        assert library.count() == 0
        assert list((tmp_path / "data").rglob("*.png")) == [] and list((tmp_path / "data").rglob("*.part")) == []


@pytest.mark.parametrize(
    ("size", "refused"),
    [((4096, 4096), False), ((4096, 4097), True), ((2048, 2048), False), ((13000, 13000), True), ((1, 2**31), True)],
)
def test_the_cap_is_read_from_the_header_without_decoding(tmp_path, size, refused):
    path = tmp_path / "declared.png"
    path.write_bytes(one_colour_png(*size, rows=1))  # the header declares the size; the data is one row
    if refused:
        with pytest.raises(UserError, match="megapixels"):
            checked_size(path)
    else:
        assert checked_size(path) == size and size[0] * size[1] <= MAX_IMAGE_PIXELS


def test_a_jpeg_above_the_cap_is_refused_from_its_header(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", OVER, (9, 9, 9)).save(path, format="JPEG", quality=10)
    with pytest.raises(UserError, match="5000 × 4000 pixels"):
        checked_size(path)
    (tmp_path / "not-an-image.png").write_bytes(b"hello")
    assert checked_size(tmp_path / "not-an-image.png") is None
    assert checked_size(tmp_path / "missing.png") is None


def test_cli_import_of_a_decompression_bomb_says_why_without_pillows_warning(dirs, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(one_colour_png(13000, 13000, rows=1))
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would surface here
        code = main(["import", str(bomb)], stdout=out, stderr=err)
    assert code == 1
    assert "bomb.png is 13000 × 13000 pixels (169 megapixels)" in err.getvalue()
    assert "Warning" not in err.getvalue() + capsys.readouterr().err


def test_a_thumbnail_cache_refuses_before_pillow_opens_the_file(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(one_colour_png(13000, 13000, rows=1))
    real_open = Image.open

    def watched_open(fp, *args, **kwargs):
        assert str(fp) != str(path), "Pillow opened the bomb"
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", watched_open)
    with pytest.raises(UserError, match="megapixels"):
        ThumbnailCache(tmp_path / "thumbs").thumbnail_path(path)
