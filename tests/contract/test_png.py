"""Text chunks added to a PNG without re-encoding it, as the app and the demo tools write them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from contract import with_text_chunks


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 20, 30)).save(out, format="PNG")
    return out.getvalue()


def test_added_text_chunks_are_read_back_and_the_pixels_are_untouched():
    png = with_text_chunks(_png(), {"parameters": "a koi pond\nSteps: 30", "Title": "café 猫"})

    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.text == {"parameters": "a koi pond\nSteps: 30", "Title": "café 猫"}
        assert image.getpixel((3, 2)) == (10, 20, 30)
    assert b"tEXtparameters" in png and b"iTXtTitle" in png  # Latin-1 as tEXt, the rest as UTF-8 iTXt


def test_bytes_that_are_not_a_png_are_refused():
    with pytest.raises(ValueError, match="not a PNG"):
        with_text_chunks(b"GIF89a" + bytes(40), {"parameters": "x"})
