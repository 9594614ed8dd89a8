"""extract_image: PNGs with their parameters and a manifest, or a failed manifest saying why."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from lambda_events import notification, sns_event
from PIL import Image

from contract import (
    ACCEPT_JPEG,
    FAILED,
    decode_output,
    encode_output,
    image_key,
    manifest_key,
    new_inference_id,
    parse_manifest,
    parse_parameters,
)

REQUEST = {
    "prompt": "a lighthouse at dusk, oil painting",
    "negative_prompt": "blurry",
    "width": 64,
    "height": 48,
    "num_inference_steps": 25,
    "guidance_scale": 7.5,
    "num_images_per_prompt": 2,
    "seed": 42,
}
rng = np.random.default_rng(3)


def _images(count: int = 2, height: int = 48, width: int = 64) -> list[np.ndarray]:
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _job(extract_image, output: bytes | None, request: dict | bytes | None = REQUEST, **kwargs) -> str:
    """Store a job's request and output as the endpoint would; return its inference id."""
    inference_id = new_inference_id()
    if request is not None:
        body = request if isinstance(request, bytes) else orjson.dumps(request)
        extract_image.put(f"requests/{inference_id}.json", body)
    if output is not None:
        extract_image.put(f"output/{inference_id}.out", output)
    return inference_id


def _png(extract_image, key: str) -> tuple[np.ndarray, str]:
    with Image.open(io.BytesIO(extract_image.get(key))) as png:
        png.load()
        return np.asarray(png), png.text["parameters"]


def _manifest(extract_image, inference_id: str):
    return parse_manifest(extract_image.get(manifest_key(inference_id)), inference_id)


def test_a_completed_job_becomes_pngs_with_parameters_and_then_a_manifest(extract_image, monkeypatch):
    images = _images()
    inference_id = _job(extract_image, encode_output(images, REQUEST["prompt"]))
    written = []
    put = extract_image.s3.put_object
    monkeypatch.setattr(extract_image.s3, "put_object", lambda **kw: (written.append(kw["Key"]), put(**kw))[1])

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    keys = [image_key(inference_id, 0), image_key(inference_id, 1)]
    assert written == [*keys, manifest_key(inference_id)]
    for number, (key, image) in enumerate(zip(keys, images, strict=True)):
        pixels, text = _png(extract_image, key)
        assert np.array_equal(pixels, image)
        params = parse_parameters(text)
        assert (params.prompt, params.negative_prompt) == (REQUEST["prompt"], "blurry")
        assert (params.steps, params.guidance_scale, params.seed, params.width, params.height) == (25, 7.5, 42, 64, 48)
        assert params.model == "test-endpoint"
        assert params.extra == {"Batch size": "2", "Batch pos": str(number)}
    manifest = _manifest(extract_image, inference_id)
    assert manifest.status == "completed" and manifest.image_keys == tuple(keys)
    assert (manifest.request, manifest.width, manifest.height) == (REQUEST, 64, 48)
    assert manifest.created == "2026-11-25T15:00:01.250Z"
    assert all(line.get("inference_id") == inference_id for line in extract_image.lines() if "Wrote" in line["message"])


def test_a_model_named_by_the_output_is_kept_in_the_png(extract_image):
    body = orjson.dumps(
        {"generated_images": _images(1), "prompt": "p", "model": "Sandbox test pattern (not a model)"},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    inference_id = _job(extract_image, body)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    assert parse_parameters(_png(extract_image, image_key(inference_id, 0))[1]).model == (
        "Sandbox test pattern (not a model)"
    )


def test_base64_jpeg_output_becomes_pngs_of_the_jpeg_pixels(extract_image):
    body = encode_output(_images(), "p", ACCEPT_JPEG)
    inference_id = _job(extract_image, body)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    for number, expected in enumerate(decode_output(body)):
        assert np.array_equal(_png(extract_image, image_key(inference_id, number))[0], expected)
    assert _manifest(extract_image, inference_id).status == "completed"


@pytest.mark.parametrize("request_body", [None, b"{not json", b"[1, 2]"], ids=["missing", "not-json", "not-object"])
def test_without_a_readable_request_the_parameters_come_from_the_output(extract_image, request_body):
    inference_id = _job(extract_image, encode_output(_images(1), "from the output"), request=request_body)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    params = parse_parameters(_png(extract_image, image_key(inference_id, 0))[1])
    assert (params.prompt, params.seed, params.width, params.height) == ("from the output", None, 64, 48)
    assert _manifest(extract_image, inference_id).request == {"prompt": "from the output"}
    assert any("parameters come from the output" in line["message"] for line in extract_image.lines())


def test_the_same_notification_twice_writes_the_same_objects(extract_image):
    inference_id = _job(extract_image, encode_output(_images(), "p"))
    event = sns_event(notification(inference_id, extract_image.bucket))

    extract_image(event)
    first = {key: extract_image.get(key) for key in extract_image.keys()}
    extract_image(event)

    assert {key: extract_image.get(key) for key in extract_image.keys()} == first


def _rows(text: str) -> bytes:
    return ('{"generated_images": ' + text + ', "prompt": "p"}').encode()


BAD_OUTPUTS = {
    "not-json": (b"Internal Server Error", "The model output is not valid JSON"),
    "truncated": (encode_output(_images(1), "p")[:5000], "it may be truncated"),
    "no-generated-images": (b'{"prompt": "p"}', "no list of generated_images"),
    "generated-images-empty": (_rows("[]"), "list is empty"),
    "generated-images-not-a-list": (_rows("{}"), "no list of generated_images"),
    "ragged-rows": (_rows("[[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9]]]]"), "Image 1 has rows of different lengths"),
    "two-channels": (_rows("[[[[1, 2]]]]"), "a pixel with 2 values"),
    "four-channels": (_rows("[[[[1, 2, 3, 4]]]]"), "a pixel with 4 values"),
    "minus-one": (_rows("[[[[-1, 2, 3]]]]"), "negative values"),
    "256": (_rows("[[[[256, 2, 3]]]]"), "the value 256"),
    "float": (_rows("[[[[1.5, 2, 3]]]]"), "decimal values"),
    "base64-not-an-image": (_rows('["bm90IGFuIGltYWdl"]'), "not a base64 JPEG"),
}


@pytest.mark.parametrize("case", BAD_OUTPUTS)
def test_output_that_is_not_images_gets_a_failed_manifest_that_says_why(extract_image, case):
    body, reason = BAD_OUTPUTS[case]
    inference_id = _job(extract_image, body)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    manifest = _manifest(extract_image, inference_id)
    assert manifest.status == "failed" and reason in manifest.reason and manifest.reason.endswith(".")
    assert manifest.request == REQUEST and manifest.image_keys == ()
    lines = extract_image.lines()
    assert any("Post-processing failed" in line["message"] for line in lines)
    assert lines and all(line.get("inference_id") == inference_id for line in lines)


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("s3://someone-elses-bucket/output/x.out", "in another bucket (someone-elses-bucket)"),
        ("https://example.com/output/x.out", "is not an s3:// address"),
        ("s3://", "is not an s3:// address"),
        (None, "does not say where the model output is"),
        ("missing", "missing from S3"),
    ],
    ids=["other-bucket", "https", "malformed", "absent", "object-missing"],
)
def test_output_that_cannot_be_read_gets_a_failed_manifest(extract_image, location, reason):
    inference_id = _job(extract_image, None)
    message = notification(inference_id, extract_image.bucket)
    if location is None:
        del message["responseParameters"]["outputLocation"]
    elif location != "missing":
        message["responseParameters"]["outputLocation"] = location

    extract_image(sns_event(message))

    manifest = _manifest(extract_image, inference_id)
    assert manifest.status == "failed" and reason in manifest.reason and manifest.reason.endswith(".")


def test_an_unknown_status_gets_a_failed_manifest(extract_image):
    inference_id = new_inference_id()
    extract_image(sns_event({"inferenceId": inference_id, "invocationStatus": "Stopped"}))

    assert "unknown status" in _manifest(extract_image, inference_id).reason
    assert all(line.get("inference_id") == inference_id for line in extract_image.lines())


@pytest.mark.parametrize(
    ("event", "logged"),
    [
        ({}, "without Records"),
        ({"Records": [{"Sns": {}}]}, "has no SNS message"),
        (sns_event("not json"), "not JSON"),
        (sns_event({"Type": "test"}), "without an inferenceId"),
        (sns_event({"inferenceId": "../../images", "invocationStatus": "Completed"}), "not safe as an S3 key"),
        (sns_event({"inferenceId": "a/b", "invocationStatus": "Completed"}), "not safe as an S3 key"),
    ],
    ids=["no-records", "no-sns", "not-json", "no-inference-id", "dot-dot-id", "slash-id"],
)
def test_messages_without_a_job_are_logged_and_write_nothing(extract_image, event, logged):
    extract_image(event)

    assert extract_image.keys() == []
    assert any(logged in line["message"] for line in extract_image.lines())


def test_a_failed_job_is_left_to_save_message(extract_image):
    inference_id = new_inference_id()

    extract_image(sns_event(notification(inference_id, extract_image.bucket, status=FAILED, failure_reason="boom")))

    assert extract_image.keys() == []


def test_a_transient_s3_error_is_raised_so_lambda_retries_and_no_manifest_is_written(extract_image, monkeypatch):
    from botocore.exceptions import ClientError

    inference_id = _job(extract_image, encode_output(_images(1), "p"))

    def throttled(**_kwargs):
        raise ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")

    monkeypatch.setattr(extract_image.s3, "get_object", throttled)
    with pytest.raises(ClientError):
        extract_image(sns_event(notification(inference_id, extract_image.bucket)))
    assert manifest_key(inference_id) not in extract_image.keys()


def test_an_output_larger_than_any_request_can_produce_is_not_downloaded_and_fails_the_job(extract_image, monkeypatch):
    body = encode_output(_images(1), "p")
    inference_id = _job(extract_image, body)
    monkeypatch.setattr(extract_image.module, "MAX_OUTPUT_BYTES", len(body) - 1)
    get = extract_image.s3.get_object
    read = []

    def spying_get(**kwargs):
        response = get(**kwargs)
        body_read = response["Body"].read
        response["Body"].read = lambda *a: (read.append(kwargs["Key"]), body_read(*a))[1]
        return response

    monkeypatch.setattr(extract_image.s3, "get_object", spying_get)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    manifest = _manifest(extract_image, inference_id)
    assert manifest.status == "failed" and "larger than the largest request can produce" in manifest.reason
    assert f"output/{inference_id}.out" not in read


def _denied(**_kwargs):
    """What S3 answers for GetObject to a role whose ListBucket is limited by an s3:prefix condition.

    The key's absence then reads as 403, not 404 (moto evaluates no such condition, so it is raised here).
    """
    from botocore.exceptions import ClientError

    raise ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")


def test_a_missing_output_read_as_403_under_a_prefix_scoped_list_still_fails_the_job_in_words(
    extract_image, monkeypatch
):
    inference_id = _job(extract_image, None)
    monkeypatch.setattr(extract_image.s3, "get_object", _denied)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    monkeypatch.undo()
    assert "missing from S3" in _manifest(extract_image, inference_id).reason


def test_a_403_on_an_output_that_is_there_is_a_real_refusal_and_raises(extract_image, monkeypatch):
    from botocore.exceptions import ClientError

    inference_id = _job(extract_image, encode_output(_images(1), "p"))
    monkeypatch.setattr(extract_image.s3, "get_object", _denied)

    with pytest.raises(ClientError):
        extract_image(sns_event(notification(inference_id, extract_image.bucket)))
    assert manifest_key(inference_id) not in extract_image.keys()


def _declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width × height while its data holds one row: a bomb on the wire."""
    import struct
    import zlib

    from contract import PNG_SIGNATURE
    from contract.png import png_chunk

    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data = png_chunk(b"IDAT", zlib.compress(b"\x00" + b"\x80" * 3 * width))
    return PNG_SIGNATURE + header + data + png_chunk(b"IEND", b"")


def _base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def _arrays(*images: list) -> bytes:
    return orjson.dumps({"generated_images": list(images), "prompt": "p"})


#: Outputs holding more, or larger, images than REQUEST (2 images of 64 × 48) asked for; none may be decoded.
OVER_THE_REQUEST = {
    "png-13000-as-jpeg": (_rows(f'["{_base64(_declared_png(13000, 13000))}"]'), "Image 1 is 13000 × 13000 pixels"),
    "png-beyond-pillow-as-jpeg": (_rows(f'["{_base64(_declared_png(20000, 20000))}"]'), "more pixels than Pillow"),
    "jpeg-wider-than-asked": (_rows(f'["{_base64(_jpeg(640, 48))}"]'), "Image 1 is 640 × 48 pixels"),
    "second-jpeg-taller": (
        _rows(f'["{_base64(_jpeg(64, 48))}", "{_base64(_jpeg(64, 480))}"]'),
        "Image 2 is 64 × 480 pixels",
    ),
    "arrays-wider-than-asked": (_arrays([[[0, 0, 0]] * 3000]), "Image 1 is 3000 × 1 pixels"),
    "arrays-far-larger-than-asked": (_arrays([[[255, 255, 255]] * 64] * 480), "more than an image of 64 × 48"),
    "three-images-for-two": (_arrays(*[[[[1, 2, 3]]]] * 3), "holds 3 images; the request allows at most 2"),
    "ten-thousand-images": (_arrays(*[[[[1, 2, 3]]]] * 10_000), "holds 10000 images; the request allows at most 2"),
}


@pytest.mark.parametrize("case", OVER_THE_REQUEST)
def test_an_output_beyond_its_request_gets_a_failed_manifest_before_any_image_is_decoded(
    extract_image, monkeypatch, case
):
    from contract import output

    body, reason = OVER_THE_REQUEST[case]
    inference_id = _job(extract_image, body)
    decoded = []
    monkeypatch.setattr(output, "image_from_pil", lambda picture: decoded.append(picture.size) or _images(1)[0])

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    manifest = _manifest(extract_image, inference_id)
    assert manifest.status == "failed" and reason in manifest.reason and manifest.reason.endswith("decoded.")
    assert [key for key in extract_image.keys() if key.startswith("images/")] == [manifest_key(inference_id)]
    assert all(size == (64, 48) for size in decoded)  # at most the first, in-bounds JPEG


@pytest.mark.parametrize(
    ("request_body", "count", "side", "reason"),
    [
        (None, 9, 1, "holds 9 images; the request allows at most 8"),
        (None, 1, 2056, "Image 1 is 2056 × 2056 pixels; the request allows at most 2048 × 2048"),
        ({"prompt": "p", "width": "wide", "num_images_per_prompt": 1}, 1, 2056, "at most 2048 × 2048"),
    ],
    ids=["no-request-count", "no-request-size", "unusable-width"],
)
def test_without_a_usable_request_the_contracts_maximum_bounds_the_output(
    extract_image, request_body, count, side, reason
):
    body = _rows("[" + ", ".join([f'"{_base64(_declared_png(side, side))}"'] * count) + "]")
    inference_id = _job(extract_image, body, request=request_body)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    manifest = _manifest(extract_image, inference_id)
    assert manifest.status == "failed" and reason in manifest.reason


def test_an_output_exactly_as_asked_still_completes(extract_image):
    body = _rows(f'["{_base64(_jpeg(64, 48))}", "{_base64(_jpeg(64, 48))}"]')
    inference_id = _job(extract_image, body)

    extract_image(sns_event(notification(inference_id, extract_image.bucket)))

    assert _manifest(extract_image, inference_id).status == "completed"
