"""The fast decoder gives exactly the reference's pixels, and says what is wrong for a person."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import orjson
import pytest
from PIL import Image
from reference import reference_images

from contract import ACCEPT_JPEG, OutputError, decode_image, decode_output, encode_output, encode_png, read_output

rng = np.random.default_rng(20261125)


def _random(height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _as_jumpstart(images: list[np.ndarray], prompt: str = "a lighthouse", **layout) -> bytes:
    """json.dumps, as the JumpStart container writes it (spaces after commas and colons)."""
    return json.dumps({"generated_images": [i.tolist() for i in images], "prompt": prompt}, **layout).encode()


LAYOUTS = {
    "jumpstart": lambda images: _as_jumpstart(images),
    "compact": lambda images: encode_output(images, "a lighthouse"),
    "indented": lambda images: _as_jumpstart(images, indent=1),
    "prompt-first-with-brackets": lambda images: orjson.dumps(
        {"prompt": 'say "]]]]" and [[[', "generated_images": images}, option=orjson.OPT_SERIALIZE_NUMPY
    ),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shapes", [[(1, 1)], [(3, 5)], [(17, 1)], [(1, 9), (1, 9)], [(24, 32)] * 3, [(4, 5), (2, 3)]])
def test_pixels_equal_the_reference_method(layout, shapes):
    body = LAYOUTS[layout]([_random(h, w) for h, w in shapes])

    ours = decode_output(body)

    expected = reference_images(body)
    assert len(ours) == len(expected)
    for image, reference in zip(ours, expected, strict=True):
        assert image.dtype == np.uint8 and image.shape == reference.shape
        assert np.array_equal(image, reference)


def test_a_2048_square_image_decodes_exactly():
    image = _random(2048, 2048)
    body = encode_output([image], "p").replace(b",", b", ")  # json.dumps's layout, quickly

    [decoded] = decode_output(body)

    # json.loads + putpixel of valid 0–255 integers is the source array itself; 4 M putpixel
    # calls would take longer than this whole test file.
    assert np.array_equal(decoded, image)


def test_extreme_values_and_the_prompt_and_other_fields_are_kept():
    image = np.array([[[0, 255, 9], [10, 99, 100]]], dtype=np.uint8)
    body = json.dumps({"generated_images": [image.tolist()], "prompt": "p", "model": "sd-2.1", "nsfw": False}).encode()

    output = read_output(body)

    assert np.array_equal(output.images[0], image)
    assert output.prompt == "p" and output.details == {"model": "sd-2.1", "nsfw": False}


def test_base64_jpeg_output_decodes_to_the_jpeg_pixels():
    images = [_random(16, 24), _random(16, 24)]
    body = encode_output(images, "p", ACCEPT_JPEG)

    decoded = decode_output(body)

    for text, image in zip(orjson.loads(body)["generated_images"], decoded, strict=True):
        with Image.open(io.BytesIO(base64.b64decode(text))) as jpeg:
            assert np.array_equal(image, np.asarray(jpeg.convert("RGB")))


def test_an_already_parsed_image_decodes_too():
    image = _random(3, 4)
    assert np.array_equal(decode_image(image.tolist()), image)
    with pytest.raises(OutputError, match="negative"):
        decode_image([[[0, -1, 2]]])


def _body(images_json: str) -> bytes:
    return ('{"generated_images": ' + images_json + ', "prompt": "p"}').encode()


BAD_OUTPUTS = {
    "not-json": (b"<html>502 Bad Gateway</html>", "not valid JSON"),
    "truncated": (_as_jumpstart([np.zeros((4, 4, 3), np.uint8)])[:-40], "not valid JSON (it may be truncated)"),
    "not-an-object": (b"[1, 2, 3]", "not a JSON object"),
    "no-generated-images": (b'{"prompt": "p"}', "no list of generated_images"),
    "generated-images-not-a-list": (_body('"oops"'), "no list of generated_images"),
    "generated-images-empty": (_body("[]"), "list is empty"),
    "image-is-a-number": (_body("[7]"), "image 1 is neither nested RGB arrays nor a base64 JPEG"),
    "ragged-rows": (_body("[[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9]]]]"), "rows of different lengths"),
    "two-channels": (_body("[[[[1, 2], [4, 5]]]]"), "a pixel with 2 values"),
    "four-channels": (_body("[[[[1, 2, 3, 4]]]]"), "a pixel with 4 values"),
    "minus-one": (_body("[[[[1, -1, 3]]]]"), "negative values"),
    "256": (_body("[[[[1, 2, 3], [1, 256, 3]]]]"), "image 1 at row 1, column 2 (green) has the value 256"),
    "1000": (_body("[[[[1000, 2, 3]]]]"), "a value above 999"),
    "12345": (_body("[[[[1, 2, 3], [12345, 2, 3]]]]"), "a value above 999"),
    "float": (_body("[[[[1.0, 2, 3]]]]"), "decimal values"),
    "exponent": (_body("[[[[1e2, 2, 3]]]]"), "decimal values"),
    "leading-zero": (_body("[[[[01, 2, 3]]]]"), "leading zeros"),
    "null": (_body("[[[[null, 2, 3]]]]"), "null, true or false"),
    "flat-rows": (_body("[[[1, 2, 3], [4, 5, 6]]]"), "not rows of [red, green, blue] pixels"),
    "too-deep": (_body("[[[[[1, 2, 3]]]]]"), "nested deeper"),
    "empty-row": (_body("[[[]]]"), "empty row or pixel"),
    "second-image-bad": (_body("[[[[1, 2, 3]]], [[[1, 2]]]]"), "image 2 has a pixel with 2 values"),
    "missing-comma": (_body("[[[[1, 2 3]]]]"), "separated by a space, not a comma"),
    "missing-comma-between-pixels": (_body("[[[[1, 2, 3] [4, 5, 6]]]]"), "not valid JSON arrays of pixels"),
    "base64-not-an-image": (_body('["aGVsbG8gd29ybGQ="]'), "image 1 is a string but not a base64 JPEG"),
    "not-base64": (_body('["%%%"]'), "image 1 is a string but not a base64 JPEG"),
}


@pytest.mark.parametrize("case", BAD_OUTPUTS)
def test_bad_output_is_refused_with_a_reason_a_designer_can_read(case):
    body, reason = BAD_OUTPUTS[case]
    with pytest.raises(OutputError) as raised:
        decode_output(body)
    assert reason in str(raised.value)


@pytest.mark.parametrize("parameters", ["a cat\nSteps: 3, Seed: 1", "café ☕ 猫\nSteps: 3, Seed: 1"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 96)])
def test_our_png_holds_the_exact_pixels_and_the_parameters_text(shape, parameters):
    image = _random(*shape)

    with Image.open(io.BytesIO(encode_png(image, parameters))) as png:
        png.load()
        assert png.mode == "RGB" and np.array_equal(np.asarray(png), image)
        assert png.text["parameters"] == parameters


def _oracle(body: bytes) -> list[np.ndarray] | None:
    """What json.loads accepts as images of whole numbers 0–255, or None."""
    try:
        data = json.loads(body)
        images = data["generated_images"]
        assert isinstance(images, list) and images
        arrays = []
        for image in images:
            assert isinstance(image, list)
            array = np.array(image, dtype=object)
            assert array.ndim == 3 and array.shape[2] == 3 and array.size
            assert all(type(v) is int and 0 <= v <= 255 for v in array.ravel())
            arrays.append(array.astype(np.uint8))
        return arrays
    except (ValueError, KeyError, TypeError, AssertionError, AttributeError):
        return None


def test_damaged_outputs_are_decoded_exactly_when_json_loads_accepts_them_and_refused_otherwise():
    fuzz = np.random.default_rng(7)
    alphabet = b' ,[]0123456789-.e"{}:'
    accepted = refused = 0
    for _ in range(600):
        body = bytearray(_as_jumpstart([_random(2, 3), _random(2, 3)], prompt="p"))
        for _ in range(int(fuzz.integers(1, 3))):
            at = int(fuzz.integers(0, len(body)))
            action = fuzz.integers(0, 3)
            if action == 0:
                del body[at]
            elif action == 1:
                body.insert(at, alphabet[int(fuzz.integers(0, len(alphabet)))])
            else:
                body[at] = alphabet[int(fuzz.integers(0, len(alphabet)))]
        body = bytes(body)
        if b"-0" in body:
            continue  # json.loads reads -0 as 0; we refuse every minus sign as a negative value
        expected = _oracle(body)
        if expected is None:
            with pytest.raises(OutputError):
                decode_output(body)
            refused += 1
        else:
            ours = decode_output(body)
            assert len(ours) == len(expected) and all(
                np.array_equal(a, b) for a, b in zip(ours, expected, strict=True)
            ), body
            accepted += 1
    assert accepted > 50 and refused > 50
