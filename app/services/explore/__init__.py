"""Exploring: dynamic prompts, styles, sweeps and their contact sheets."""

from __future__ import annotations

from app.services.explore.estimate import CONFIRM_ABOVE, Estimate, estimate
from app.services.explore.prompts import MAX_EXPANSIONS, PromptError, Wildcards, expand, expansion_count
from app.services.explore.styles import Style, StyleBook, StyleError
from app.services.explore.sweep import (
    KINDS,
    MAX_IMAGES,
    STYLE_KEY,
    Axis,
    SweepError,
    SweepPlan,
    axis_of,
    parse_axis,
    plan_sweep,
    rerun_cell,
    submit_sweep,
    unknown_deployment,
)

__all__ = [
    "CONFIRM_ABOVE",
    "KINDS",
    "MAX_EXPANSIONS",
    "MAX_IMAGES",
    "STYLE_KEY",
    "Axis",
    "Estimate",
    "PromptError",
    "Style",
    "StyleBook",
    "StyleError",
    "SweepError",
    "SweepPlan",
    "Wildcards",
    "axis_of",
    "estimate",
    "expand",
    "expansion_count",
    "parse_axis",
    "plan_sweep",
    "rerun_cell",
    "submit_sweep",
    "unknown_deployment",
]
