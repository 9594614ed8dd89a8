"""From what the user typed to the requests sent: the style applied, then the dynamic prompt expanded.

The style goes first, so a style's own template may hold choices too; every expanded prompt is one
request, and the style's name goes with each into its PNG's parameters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from app.services.explore.prompts import MAX_EXPANSIONS, Wildcards, expand
from app.services.explore.styles import Style

WILDCARDS_FOLDER = "wildcards"
STYLE_KEY = "Style"


def wildcards_folder(data_dir: str | os.PathLike[str]) -> Path:
    """Where `__name__` looks for `name.txt`: `wildcards/` in the user's data folder."""
    return Path(data_dir) / WILDCARDS_FOLDER


def expand_request(
    fields: dict[str, Any],
    *,
    style: Style | None = None,
    wildcards: Wildcards | None = None,
    picks: int | None = None,
    limit: int = MAX_EXPANSIONS,
) -> list[dict[str, Any]]:
    """One request's fields per prompt `fields["prompt"]` expands to, with `style` applied to each.

    Random picks are drawn with the request's seed when it has one, so the same command picks the same.
    """
    prompt, negative = str(fields.get("prompt") or ""), str(fields.get("negative_prompt") or "")
    if style is not None:
        prompt, negative = style.apply(prompt, negative)
    prompts = expand(prompt, wildcards, picks=picks, seed=fields.get("seed"), limit=limit)
    out = []
    for text in prompts:
        request = {**fields, "prompt": text}
        if negative or "negative_prompt" in fields:
            request["negative_prompt"] = negative
        out.append(request)
    return out


def style_extra(style: Style | None) -> dict[str, str]:
    """What a job's PNGs say about its style."""
    return {STYLE_KEY: style.name} if style is not None else {}
