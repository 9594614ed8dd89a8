"""The AWS guidance's way of turning the model output into images: json.loads, then putpixel."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image


def reference_images(body: bytes) -> list[np.ndarray]:
    """One pixel at a time, as the public sample does; the pixels our decoder must equal."""
    images = []
    for pixels in json.loads(body)["generated_images"]:
        image = Image.new("RGB", (len(pixels[0]), len(pixels)))
        for y, row in enumerate(pixels):
            for x, pixel in enumerate(row):
                image.putpixel((x, y), tuple(pixel))
        images.append(np.asarray(image))
    return images
