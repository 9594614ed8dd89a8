"""The model output without numpy, as the packaged app's sandbox reads and writes it.

The plain path must give the same pixels and the same reasons as the numpy path.
"""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from PIL import Image

from contract import output
from contract.output import ACCEPT_JPEG, OutputError, Pixels, encode_output, encode_png, read_output


@pytest.fixture
def without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "np", None)


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8), rng.integers(0, 256, size=(2, 3, 3), dtype=np.uint8)]


def test_the_plain_path_reads_the_same_pixels_prompt_and_details(monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images()
    body = encode_output(images, "a koi pond", details={"model": "sd-2-1", "steps": 30})
    expected = read_output(body)

    monkeypatch.setattr(output, "np", None)
    plain = read_output(body)

    assert [p.shape for p in plain.images] == [(5, 4, 3), (2, 3, 3)]
    assert [p.tobytes() for p in plain.images] == [i.tobytes() for i in images]
    assert (plain.prompt, plain.details) == (expected.prompt, expected.details)


def test_what_the_plain_path_writes_the_numpy_path_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images()
    monkeypatch.setattr(output, "np", None)
    body = encode_output([Pixels(*i.shape[:2], i.tobytes()) for i in images], "a koi pond")
    monkeypatch.undo()

    assert [d.tobytes() for d in read_output(body).images] == [i.tobytes() for i in images]


def test_a_jpeg_output_round_trips_without_numpy(without_numpy: None) -> None:
    image = Pixels(8, 8, bytes([200, 40, 40]) * 64)
    decoded = read_output(encode_output([image], "red", ACCEPT_JPEG)).images[0]

    assert decoded.shape == (8, 8, 3)
    assert max(abs(a - b) for a, b in zip(decoded.tobytes(), image.data, strict=True)) < 12  # JPEG is lossy


def test_a_png_written_without_numpy_holds_the_pixels_and_the_parameters(without_numpy: None) -> None:
    image = Pixels(3, 2, bytes(range(18)))
    png = encode_png(image, "a koi pond\nSteps: 30")

    with Image.open(io.BytesIO(png)) as picture:
        assert picture.size == (2, 3)
        assert picture.tobytes() == image.data
        assert picture.info["parameters"] == "a koi pond\nSteps: 30"


BAD_IMAGES = [
    ("[[[1,2]]]", "a pixel with 2 values"),
    ("[[[1,2,3]],[[1,2,3],[4,5,6]]]", "rows of different lengths: row 1 has 1 pixels, row 2 has 2"),
    ("[[[1,2,300]]]", "the value 300"),
    ("[[[1,2,-3]]]", "negative values"),
    ("[[[1,2.5,3]]]", "decimal values"),
    ("[[[1,true,3]]]", "null, true or false"),
    ("[[[1,null,3]]]", "null, true or false"),
    ('[[["a",2,3]]]', "text where a pixel value should be"),
    ('[[[{"r":1},2,3]]]', "a JSON object where a pixel should be"),
    ("[[[[1],2,3]]]", "nested deeper than rows of [red, green, blue] pixels"),
    ("[[[]]]", "an empty row or pixel"),
    ("[[[1,2,3]],[]]", "an empty row or pixel"),
    ("[[1,2,3]]", "a value stands outside a pixel"),
]


@pytest.mark.parametrize("numpy", [True, False], ids=["numpy", "plain"])
@pytest.mark.parametrize(("image", "reason"), BAD_IMAGES, ids=[reason for _, reason in BAD_IMAGES])
def test_both_paths_refuse_a_bad_image_with_the_same_reason(
    image: str, reason: str, numpy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not numpy:
        monkeypatch.setattr(output, "np", None)
    body = b'{"generated_images": [[[[0,0,0]]], ' + image.encode() + b'], "prompt": "x"}'

    with pytest.raises(OutputError) as refused:
        read_output(body)

    assert "image 2" in str(refused.value)
    assert reason in str(refused.value)


def test_a_body_that_is_not_json_is_refused_without_numpy(without_numpy: None) -> None:
    with pytest.raises(OutputError, match="not valid JSON"):
        read_output(orjson.dumps({"generated_images": [[[[1, 2, 3]]]]})[:-5])


def _jpeg_text(width: int, height: int) -> str:
    import base64

    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, format="JPEG")
    return base64.b64encode(out.getvalue()).decode()


LIMITED = {
    "count": ({"generated_images": [[[[1, 2, 3]]]] * 3}, "holds 3 images; the request allows at most 2"),
    "array-width": ({"generated_images": [[[[1, 2, 3]] * 9]]}, "image 1 is 9 × 1 pixels"),
    "array-height": ({"generated_images": [[[[1, 2, 3]]] * 9]}, "image 1 is 1 × 9 pixels"),
    "jpeg-size": ({"generated_images": [_jpeg_text(8, 8), _jpeg_text(16, 8)]}, "image 2 is 16 × 8 pixels"),
}


@pytest.mark.parametrize("with_numpy", [True, False], ids=["numpy", "plain"])
@pytest.mark.parametrize("case", LIMITED)
def test_both_paths_refuse_what_the_request_does_not_allow_in_the_same_words(monkeypatch, case, with_numpy):
    from contract import OutputLimits, OutputTooLarge

    data, reason = LIMITED[case]
    if not with_numpy:
        monkeypatch.setattr(output, "np", None)
    with pytest.raises(OutputTooLarge, match=reason):
        read_output(orjson.dumps(data), OutputLimits(width=8, height=8, images=2))
    assert len(read_output(orjson.dumps(data)).images) == len(data["generated_images"])  # the contract's maximum
