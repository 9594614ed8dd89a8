"""deploy."""

from __future__ import annotations

from app.services.deploy.bundle import DeployOptions, check_guard, guard_problems, load_options
from app.services.deploy.deployer import Deployer

__all__ = ["DeployOptions", "Deployer", "check_guard", "guard_problems", "load_options"]
