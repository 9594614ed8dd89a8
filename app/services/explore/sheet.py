"""A sweep's contact sheet: its cells' images in a grid with the axis labels drawn, as one PNG.

x runs across, y down, and each z value is a block of its own under a title. The PNG carries the
sheet's `parameters` (the first cell's, with the axes) and a `sweep` chunk holding, per cell, its
position, its box in the sheet and its own `parameters` text, so every cell can be read back.
The separate PNGs are exported beside it with their own parameters.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from PIL import Image, ImageDraw, ImageFont, ImageOps

from app.services.errors import UserError
from app.services.files import atomic_write
from app.services.library.pngmeta import open_png
from app.services.library.sweeps import Position, SweepRecord
from app.services.models import Job, JobState
from contract import Parameters, format_parameters, with_text_chunks

SWEEP_CHUNK = "sweep"
MAX_CELL = 512  # a cell's longest side in the exported sheet (10 × 10 at 512 is a 5 k × 5 k PNG)
_PAD = 8
_BACKGROUND = (250, 250, 250)
_INK = (30, 30, 30)
_EMPTY = (225, 225, 228)


@dataclass(slots=True)
class SheetCell:
    """One cell as the sheet shows it: its job, its first image (when done) and what it says."""

    position: Position
    labels: list[tuple[str, str]]
    job: Job | None
    image_path: str | None
    parameters: Parameters | None = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def status(self) -> str:
        if self.job is None:
            return "removed"
        if self.image_path:
            return "done"
        return {
            JobState.FAILED: "failed",
            JobState.EXPIRED: "expired",
            JobState.LOST: "lost",
            JobState.CANCELLED: "cancelled",
        }.get(self.job.state, "waiting")


@dataclass(slots=True)
class Sheet:
    """A sweep's cells with their jobs, ready to draw (the GUI's grid and the exported PNG share it)."""

    sweep: SweepRecord
    cells: dict[Position, SheetCell] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(1 for cell in self.cells.values() if cell.status == "done")

    @property
    def finished(self) -> int:
        return sum(1 for cell in self.cells.values() if cell.status != "waiting")


def sheet_of(sweep: SweepRecord, library: Any) -> Sheet:
    """The sweep's cells as they are now in the library (worker thread: it reads the library)."""
    sheet = Sheet(sweep)
    ids = list(sweep.cells.values())
    jobs = {job.inference_id: job for job in library.jobs_by_id(ids)}
    for position in sweep.positions():
        job = jobs.get(sweep.cells.get(position, ""))
        path = job.image_paths[0] if job and job.state == JobState.COMPLETED and job.image_paths else None
        sheet.cells[position] = SheetCell(position, sweep.labels(position), job, path)
    return sheet


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render(
    sheet: Sheet, cell_size: int | None = None, source: Callable[[str], str | os.PathLike[str]] | None = None
) -> Image.Image:
    """The sheet as one image: column labels on top, row labels at the left, a title per z block.

    Sets each cell's `box` (its place in the image) and `parameters` (read from its PNG). `source` gives
    the file to draw for an image (the GUI's small sheets draw thumbnails); the parameters stay the image's own.
    """
    # Long on purpose: one layout pass (measure labels, place cells, draw) sharing its measurements.
    sweep = sheet.sweep
    nx, ny, nz = sweep.shape
    images: dict[Position, Image.Image] = {}
    largest = 64
    for position, cell in sheet.cells.items():
        if cell.image_path:
            with open_png(cell.image_path, load=source is None) as image:
                cell.parameters = _parameters_of(image)
                if source is None:
                    images[position] = image.convert("RGB")
            if source is not None:
                with open_png(source(cell.image_path)) as image:
                    images[position] = image.convert("RGB")
            largest = max(largest, *images[position].size)
    size = cell_size or min(largest, MAX_CELL)
    font = _font(max(12, size // 16))
    title_font = _font(max(14, size // 12))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = int(font.size * 1.4) if hasattr(font, "size") else 16
    y_axis = sweep.axes[1] if len(sweep.axes) > 1 else None
    row_texts = [y_axis.title, *y_axis.labels] if y_axis else []
    left = min(2 * size, max((int(probe.textlength(t, font=font)) for t in row_texts), default=0)) + 2 * _PAD
    top = line * 2 + _PAD
    block_title = int(title_font.size * 1.6) if nz > 1 else 0
    block_height = block_title + top + ny * (size + _PAD)
    width = left + nx * (size + _PAD) + _PAD
    height = nz * block_height + _PAD
    out = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(out)
    x_axis = sweep.axes[0]
    for z in range(nz):
        y0 = z * block_height
        if nz > 1:
            title = f"{sweep.axes[2].title}: {sweep.axes[2].labels[z]}"
            draw.text(
                (_PAD, y0 + _PAD // 2), _fit(draw, title, title_font, width - 2 * _PAD), fill=_INK, font=title_font
            )
        y0 += block_title
        draw.text((left, y0 + _PAD // 2), _fit(draw, x_axis.title, font, width - left), fill=_INK, font=font)
        if y_axis:
            draw.text((_PAD, y0 + line), _fit(draw, y_axis.title, font, left - 2 * _PAD), fill=_INK, font=font)
        for x in range(nx):
            label = _fit(draw, x_axis.labels[x], font, size)
            draw.text((left + x * (size + _PAD), y0 + line), label, fill=_INK, font=font)
        for y in range(ny):
            cy = y0 + top + y * (size + _PAD)
            if y_axis:
                label = _fit(draw, y_axis.labels[y], font, left - 2 * _PAD)
                draw.text((_PAD, cy + size // 2 - line // 2), label, fill=_INK, font=font)
            for x in range(nx):
                cx = left + x * (size + _PAD)
                cell = sheet.cells[(x, y, z)]
                cell.box = (cx, cy, cx + size, cy + size)
                image = images.get((x, y, z))
                if image is None:
                    draw.rectangle(cell.box, fill=_EMPTY)
                    draw.text((cx + _PAD, cy + size // 2 - line // 2), cell.status, fill=_INK, font=font)
                    continue
                image = ImageOps.contain(image, (size, size))
                out.paste(image, (cx + (size - image.width) // 2, cy + (size - image.height) // 2))
    return out


def _parameters_of(image: Image.Image) -> Parameters | None:
    from contract import parse_parameters

    text = getattr(image, "text", {}).get("parameters") if hasattr(image, "text") else None
    if not text:
        return None
    try:
        return parse_parameters(text)
    except ValueError:
        return None


def sheet_metadata(sheet: Sheet) -> dict[str, str]:
    """The PNG text chunks of an exported sheet: its `parameters` and, per cell, its own (`sweep`)."""
    sweep = sheet.sweep
    cells = []
    for position, cell in sheet.cells.items():
        cells.append(
            {
                "x": position[0],
                "y": position[1],
                "z": position[2],
                "labels": [f"{title}: {label}" for title, label in cell.labels],
                "box": list(cell.box),
                "status": cell.status,
                "inference_id": cell.job.inference_id if cell.job else None,
                "parameters": format_parameters(cell.parameters) if cell.parameters else None,
            }
        )
    data = {"id": sweep.id, "prompt": sweep.prompt, "axes": [axis.to_dict() for axis in sweep.axes], "cells": cells}
    first = next((cell.parameters for cell in sheet.cells.values() if cell.parameters), None)
    summary = first or Parameters(prompt=sweep.prompt)
    axes = "; ".join(f"{name}: {axis.title}" for name, axis in zip("xyz", sweep.axes, strict=False))
    summary = Parameters(
        prompt=summary.prompt,
        negative_prompt=summary.negative_prompt,
        steps=summary.steps,
        guidance_scale=summary.guidance_scale,
        seed=summary.seed,
        width=summary.width,
        height=summary.height,
        model=summary.model,
        extra={**{k: v for k, v in summary.extra.items() if k != "Sweep cell"}, "Sweep": axes},
    )
    return {"parameters": format_parameters(summary), SWEEP_CHUNK: orjson.dumps(data).decode()}


def export_sheet(sheet: Sheet, dest: str | os.PathLike[str], cell_size: int | None = None) -> Path:
    """Write the contact sheet PNG at `dest` (whole or not at all), labels drawn, every cell's parameters in it."""
    dest = Path(dest)
    image = render(sheet, cell_size)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, with_text_chunks(buffer.getvalue(), sheet_metadata(sheet)))
    except OSError as exc:
        raise UserError(f"The contact sheet cannot be written to {dest} ({exc.strerror or exc}).") from None
    return dest


def cell_file_name(cell: SheetCell) -> str:
    """`x1-y2 Seed 2, CFG scale 7.5.png`: its place, then its values (safe on every file system)."""
    place = "-".join(f"{name}{index + 1}" for name, index, _ in zip("xyz", cell.position, cell.labels, strict=False))
    values = ", ".join(f"{title} {label}" for title, label in cell.labels)
    values = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", values).strip()[:120].rstrip(" .")
    return f"{place} {values}.png" if values else f"{place}.png"


def export_cells(sheet: Sheet, library: Any, folder: str | os.PathLike[str]) -> list[Path]:
    """Each finished cell's images as its own PNG in `folder`, with its parameters, named by place and values."""
    folder = Path(folder)
    written: list[Path] = []
    for cell in sheet.cells.values():
        if cell.job is None or not cell.image_path:
            continue
        for index, path in enumerate(cell.job.image_paths):
            record = library.image_by_path(path)
            if record is None or record.id is None:
                continue
            name = cell_file_name(cell)
            if index:
                name = name[: -len(".png")] + f" ({index + 1}).png"
            folder.mkdir(parents=True, exist_ok=True)
            written.append(library.export_image(record.id, folder / name))
    return written
