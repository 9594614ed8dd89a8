"""deploy."""

from __future__ import annotations

from app.services.deploy.bundle import DeployOptions, load_options
from app.services.deploy.deployer import Deployer

__all__ = ["DeployOptions", "Deployer", "load_options"]
