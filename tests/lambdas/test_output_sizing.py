"""Lossless output of the largest request the contract allows fits every limit on its way to a PNG.

The endpoint answers `application/json` (nested RGB arrays, several bytes per value), so the model
server's response limit, the decoder's own limit and extract_image's memory are sized from the
contract's request limits, not from a typical picture.
"""

from __future__ import annotations

import json
import mmap

import numpy as np
import pytest

from contract import LIMITS, PROMPT_MAX, OutputError, read_output
from contract.output import MAX_OUTPUT_BYTES, rgb_output_bytes
from contract.request import MAX_REQUEST_BYTES
from infra.config import load_config

CONFIG = load_config()
LARGEST = (int(LIMITS["width"].high), int(LIMITS["height"].high), int(LIMITS["num_images_per_prompt"].high))
#: extract_image's memory beside the output itself, from bench/postprocess.py's figures for the
#: worst case (8 × 2048², 571 MB, read from S3 over HTTP): the runtime, boto3, numpy and Pillow
#: imported (about 50 MB, 256 allowed for the Lambda runtime and Powertools), and the decoder's and
#: PNG writer's working set, 0.43 × the output (0.5 allowed).
RUNTIME_MB = 256
WORKING_SET_PER_OUTPUT_BYTE = 0.5


def _as_jumpstart(images: list[np.ndarray], prompt: str) -> bytes:
    return json.dumps({"generated_images": [i.tolist() for i in images], "prompt": prompt}).encode()


@pytest.mark.parametrize("shape", [(1, 1, 1), (8, 8, 3), (24, 16, 2)])
def test_the_worst_case_size_is_what_json_dumps_writes_for_three_digit_values_and_the_longest_prompt(shape):
    height, width, count = shape
    images = [np.full((height, width, 3), 255, dtype=np.uint8)] * count
    pixels = len(json.dumps([i.tolist() for i in images]).encode())
    assert pixels == rgb_output_bytes(width, height, count) - 6 * MAX_REQUEST_BYTES
    body = _as_jumpstart(images, "\U0001f600" * PROMPT_MAX)
    assert pixels < len(body) <= rgb_output_bytes(width, height, count)


def test_the_largest_request_fits_the_model_servers_response_limit():
    largest = rgb_output_bytes(*LARGEST)
    assert largest > 500e6
    assert int(CONFIG.model.environment["MMS_MAX_RESPONSE_SIZE"]) >= largest


def test_the_decoder_accepts_the_largest_request_and_refuses_more():
    assert MAX_OUTPUT_BYTES == rgb_output_bytes(*LARGEST)
    with pytest.raises(OutputError, match="more than the largest request can produce"):
        read_output(memoryview(mmap.mmap(-1, MAX_OUTPUT_BYTES + 1)))  # untouched pages: no memory used


def test_extract_image_has_the_memory_for_the_largest_request():
    needed_mb = RUNTIME_MB + MAX_OUTPUT_BYTES * (1 + WORKING_SET_PER_OUTPUT_BYTE) / 2**20
    assert CONFIG.function.extract_image_memory >= needed_mb
