"""The thumbnail disk cache: freedesktop names, sizes, staleness, atomic writes."""

from __future__ import annotations

import hashlib
import os

from PIL import Image

from app.services.library.thumbnails import ThumbnailCache


def picture(path, size=(600, 400), colour=(200, 30, 30)):
    Image.new("RGB", size, colour).save(path)
    return path


def test_thumbnail_is_named_by_the_uri_md5_and_fits_the_size(tmp_path):
    source = picture(tmp_path / "big picture.png")
    cache = ThumbnailCache(tmp_path / "thumbs")
    thumb = cache.thumbnail_path(source)
    uri = source.absolute().as_uri()
    assert uri.endswith("big%20picture.png")
    assert thumb == tmp_path / "thumbs" / "large" / f"{hashlib.md5(uri.encode()).hexdigest()}.png"
    with Image.open(thumb) as image:
        assert image.size == (256, 171)
        assert image.info["Thumb::URI"] == uri
        assert image.info["Thumb::MTime"] == str(int(source.stat().st_mtime))
    with Image.open(cache.thumbnail_path(source, 100)) as small:
        assert small.size == (128, 85)
    assert cache.thumbnail_path(source, 100).parent.name == "normal"


def test_small_images_are_not_enlarged(tmp_path):
    source = picture(tmp_path / "small.png", size=(40, 30))
    with Image.open(ThumbnailCache(tmp_path / "t").thumbnail_path(source)) as image:
        assert image.size == (40, 30)


def test_a_fresh_thumbnail_is_reused_and_a_stale_one_rebuilt(tmp_path):
    source = picture(tmp_path / "a.png")
    cache = ThumbnailCache(tmp_path / "thumbs")
    thumb = cache.thumbnail_path(source)
    made = thumb.stat().st_mtime_ns
    os.utime(thumb, ns=(made - 10**9, made - 10**9))  # mark it, so a rewrite would show
    assert cache.thumbnail_path(source) == thumb
    assert thumb.stat().st_mtime_ns == made - 10**9

    picture(source, colour=(20, 200, 20))
    later = source.stat().st_mtime + 5
    os.utime(source, (later, later))
    cache.thumbnail_path(source)
    with Image.open(thumb) as image:
        assert image.getpixel((5, 5)) == (20, 200, 20)
        assert image.info["Thumb::MTime"] == str(int(later))


def test_a_damaged_thumbnail_is_rebuilt(tmp_path):
    source = picture(tmp_path / "a.png")
    cache = ThumbnailCache(tmp_path / "thumbs")
    thumb = cache.thumbnail_path(source)
    thumb.write_bytes(b"half a thumb")
    with Image.open(cache.thumbnail_path(source)) as image:
        assert image.size == (256, 171)
    assert [p.name for p in thumb.parent.iterdir()] == [thumb.name]  # no temp files left


def test_many_thumbnails_in_parallel_and_discard(tmp_path):
    sources = [picture(tmp_path / f"{n}.png", colour=(n, n, n)) for n in range(12)]
    cache = ThumbnailCache(tmp_path / "thumbs")
    thumbs = cache.thumbnail_paths(sources, workers=3)
    assert len(set(thumbs)) == 12 and all(t.exists() for t in thumbs)
    small = cache.thumbnail_path(sources[0], 128)
    cache.discard(sources[0])
    assert not thumbs[0].exists() and not small.exists()
    assert thumbs[1].exists()


def test_palette_and_greyscale_sources(tmp_path):
    grey = tmp_path / "grey.png"
    Image.new("L", (300, 300), 128).save(grey)
    palette = tmp_path / "palette.png"
    Image.new("RGB", (300, 300), (1, 2, 3)).convert("P").save(palette)
    cache = ThumbnailCache(tmp_path / "thumbs")
    for source in (grey, palette):
        with Image.open(cache.thumbnail_path(source)) as image:
            assert image.mode in ("RGB", "RGBA") and image.size == (256, 256)
