"""Reading and writing the PNG `parameters` chunk, ours and other tools'."""

from __future__ import annotations

import struct

import pytest
from PIL import Image, PngImagePlugin

from app.services.errors import UserError
from app.services.library.pngmeta import read_parameters, write_parameters
from contract import CHUNK_KEY, Parameters

A1111_TEXT = (
    "masterpiece, a cat\nin a hat\n"
    "Negative prompt: lowres, bad hands\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3405691582, Size: 512x512, "
    'Model hash: abc123, Model: sd15, Lora hashes: "detail: 1a2b, style: 3c4d", Version: v1.6.0'
)
OURS = Parameters(
    prompt="a lighthouse, at dusk: oil on canvas",
    negative_prompt="blurry",
    steps=30,
    guidance_scale=7.5,
    seed=42,
    width=64,
    height=48,
    model="stable-diffusion-2-1",
)


def save_png(path, text: dict[str, str] | None = None, *, itxt: bool = False, size=(64, 48)):
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        if itxt:
            info.add_itxt(key, value)
        else:
            info.add_text(key, value)
    Image.new("RGB", size, (200, 80, 20)).save(path, pnginfo=info)
    return path


def test_our_parameters_round_trip_through_a_png(tmp_path):
    source = save_png(tmp_path / "plain.png", {"Software": "elsewhere"})
    dest = write_parameters(source, OURS, tmp_path / "with.png")
    assert read_parameters(dest) == OURS
    with Image.open(dest) as image:
        assert image.info["Software"] == "elsewhere"  # other chunks survive
        assert image.size == (64, 48)
    assert read_parameters(source) is None


def test_writing_over_the_source_replaces_its_parameters(tmp_path):
    path = save_png(tmp_path / "a.png", {CHUNK_KEY: A1111_TEXT})
    write_parameters(path, OURS, path)
    assert read_parameters(path) == OURS
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temp file left


def test_non_latin_text_is_written_as_itxt_and_read_back(tmp_path):
    params = Parameters(prompt="灯台 at dusk 🌅", steps=10, seed=1)
    path = write_parameters(Image.new("RGB", (8, 8)), params, tmp_path / "u.png")
    assert read_parameters(path) == params
    assert b"iTXt" in path.read_bytes()


def test_automatic1111_chunk_with_quoted_values(tmp_path):
    path = save_png(tmp_path / "a1111.png", {CHUNK_KEY: A1111_TEXT})
    params = read_parameters(path)
    assert params.prompt == "masterpiece, a cat\nin a hat"
    assert params.negative_prompt == "lowres, bad hands"
    assert (params.steps, params.guidance_scale, params.seed, params.model) == (20, 7.0, 3405691582, "sd15")
    assert params.extra["Lora hashes"] == "detail: 1a2b, style: 3c4d"


def test_itxt_chunk_is_read(tmp_path):
    path = save_png(tmp_path / "i.png", {CHUNK_KEY: A1111_TEXT}, itxt=True)
    assert read_parameters(path).seed == 3405691582


def test_garbage_chunk_names_the_file_and_the_problem(tmp_path):
    path = save_png(tmp_path / "garbage.png", {CHUNK_KEY: "\x00\x01 not parameters at all"})
    with pytest.raises(UserError, match=r"garbage\.png.*parameters.*settings line"):
        read_parameters(path)


def test_not_a_png(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(UserError, match=r"notes\.png is not .*PNG"):
        read_parameters(text)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    with pytest.raises(UserError, match=r"photo\.jpg is a JPEG image"):
        read_parameters(jpeg)


def test_truncated_png(tmp_path):
    whole = save_png(tmp_path / "whole.png", {CHUNK_KEY: A1111_TEXT}, size=(256, 256))
    Image.effect_noise((256, 256), 64).convert("RGB").save(whole, pnginfo=_info(A1111_TEXT))
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match=r"cut\.png is damaged or incomplete"):
        read_parameters(cut)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"gone\.png was not found"):
        read_parameters(tmp_path / "gone.png")


def _info(text: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(CHUNK_KEY, text)
    return info


def test_corrupt_chunk_is_named_as_damage(tmp_path):
    path = save_png(tmp_path / "crc.png")
    data = path.read_bytes()
    body = b"parameters\x00a fox\nSteps: 1, Seed: 2"
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + b"\0\0\0\0"  # wrong CRC
    path.write_bytes(data[:33] + chunk + data[33:])
    with pytest.raises(UserError, match=r"crc\.png is a damaged PNG"):
        read_parameters(path)


def test_parameters_with_a_single_setting_round_trip(tmp_path):
    params = Parameters(prompt="a bare image", seed=5)
    path = write_parameters(Image.new("RGB", (8, 8)), params, tmp_path / "one.png")
    assert read_parameters(path) == params


def test_an_image_too_large_to_open_safely(tmp_path, monkeypatch):
    path = save_png(tmp_path / "huge.png", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is then over twice the limit
    with pytest.raises(UserError, match=r"huge\.png is too large"):
        read_parameters(path)
