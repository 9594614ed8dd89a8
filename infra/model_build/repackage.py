"""Streams JumpStart model data and inference code into one model.tar.gz in S3.

Nothing is held whole in memory or written to disk: source objects are read as streams, the
new tar.gz is written through gzip into a buffer of one part, and each full part goes to S3
as a part of a multipart upload. Memory stays near twice the part size whatever the model size.
"""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from contract import S3Location

CODE_DIR = "code"
MIN_PART_SIZE = 5 * 1024 * 1024


class MultipartWriter:
    """A write-only file object that uploads to S3 in parts of `part_size` bytes."""

    def __init__(self, s3, destination: S3Location, part_size: int = 64 * 1024 * 1024) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes, not {part_size}")
        self.s3 = s3
        self.destination = destination
        self.part_size = part_size
        self.buffer = bytearray()
        self.parts: list[dict] = []
        self.size = 0
        self.upload_id = s3.create_multipart_upload(
            Bucket=destination.bucket, Key=destination.key, ContentType="application/gzip"
        )["UploadId"]

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        self.size += len(data)
        while len(self.buffer) >= self.part_size:
            with memoryview(self.buffer) as view:
                part = bytes(view[: self.part_size])
            del self.buffer[: self.part_size]
            self._upload(part)
        return len(data)

    def flush(self) -> None:
        """Parts go out when full; a short last part waits for `complete`."""

    def _upload(self, body: bytes) -> None:
        number = len(self.parts) + 1
        response = self.s3.upload_part(
            Bucket=self.destination.bucket,
            Key=self.destination.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def complete(self) -> None:
        if self.buffer or not self.parts:
            self._upload(bytes(self.buffer))
            self.buffer.clear()
        self.s3.complete_multipart_upload(
            Bucket=self.destination.bucket,
            Key=self.destination.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        self.s3.abort_multipart_upload(
            Bucket=self.destination.bucket, Key=self.destination.key, UploadId=self.upload_id
        )


@dataclass(frozen=True, slots=True)
class Repackaged:
    destination: S3Location
    members: int
    size: int


def _member_name(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _tar_members(s3, source: S3Location) -> Iterator[tuple[tarfile.TarInfo, object]]:
    """Each member of a tar.gz object with a stream of its content, read front to back."""
    body = s3.get_object(Bucket=source.bucket, Key=source.key)["Body"]
    with tarfile.open(fileobj=body, mode="r|*") as archive:
        for member in archive:
            name = _member_name(member.name)
            if not name or name == ".":
                continue
            member.name = name
            yield member, archive.extractfile(member) if member.isfile() else None


def _prefix_members(s3, source: S3Location) -> Iterator[tuple[tarfile.TarInfo, object]]:
    """Each object under an S3 prefix (an uncompressed JumpStart model) as a tar member."""
    prefix = source.key if source.key.endswith("/") else f"{source.key}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            if not name or name.endswith("/"):
                continue
            info = tarfile.TarInfo(name)
            info.size = item["Size"]
            info.mode = 0o644
            yield info, s3.get_object(Bucket=source.bucket, Key=item["Key"])["Body"]


def _members(s3, source: S3Location):
    return _prefix_members(s3, source) if source.key.endswith("/") else _tar_members(s3, source)


def repackage(
    s3,
    *,
    model: S3Location,
    destination: S3Location,
    script: S3Location | None = None,
    part_size: int = 64 * 1024 * 1024,
    compresslevel: int = 1,
) -> Repackaged:
    """Write model data (tar.gz object or prefix) plus inference code under `code/` to `destination`.

    With `script`, the code under `code/` comes from it alone (any `code/` in the model data is left out).
    """
    writer = MultipartWriter(s3, destination, part_size)
    count = 0
    try:
        with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=compresslevel, mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                for info, stream in _members(s3, model):
                    if script is not None and (info.name == CODE_DIR or info.name.startswith(f"{CODE_DIR}/")):
                        continue
                    archive.addfile(info, stream)
                    count += 1
                if script is not None:
                    for info, stream in _members(s3, script):
                        info.name = f"{CODE_DIR}/{info.name}"
                        archive.addfile(info, stream)
                        count += 1
        writer.complete()
    except BaseException:
        writer.abort()
        raise
    return Repackaged(destination, count, writer.size)
