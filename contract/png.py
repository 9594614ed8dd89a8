"""PNG chunks and text chunks, written one way for the Lambda, the app and the tools.

Text is tEXt when it is Latin-1 (what other tools read first), else UTF-8 iTXt, as Pillow
writes it, so the `parameters` chunk reads the same wherever it was written.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEADER_END = len(PNG_SIGNATURE) + 4 + 4 + 13 + 4  # the signature and the IHDR chunk, always first


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk: length, type, data and the CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def text_chunk(key: str, text: str) -> bytes:
    """A tEXt chunk, or an uncompressed UTF-8 iTXt one when the text is not Latin-1."""
    text = text.replace("\x00", "")
    try:
        return png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return png_chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8"))


def with_text_chunks(png: bytes, texts: Mapping[str, str]) -> bytes:
    """`png` with a text chunk per entry right after its header: no decoding, no re-encoding."""
    if not (png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"):
        raise ValueError("not a PNG: it does not start with the signature and the IHDR chunk")
    chunks = b"".join(text_chunk(key, text) for key, text in texts.items())
    return b"".join((png[:_HEADER_END], chunks, png[_HEADER_END:]))
