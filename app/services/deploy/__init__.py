"""deploy."""

from __future__ import annotations

from app.services.deploy.bundle import (
    DEFAULT_COMPANIONS,
    DeployOptions,
    check_guard,
    check_models,
    companion_models,
    guard_problems,
    load_options,
)
from app.services.deploy.deployer import Deployer

__all__ = [
    "DEFAULT_COMPANIONS",
    "DeployOptions",
    "Deployer",
    "check_guard",
    "check_models",
    "companion_models",
    "guard_problems",
    "load_options",
]
