"""Diffusion Desk: a desktop studio for Stable Diffusion in your own AWS account."""

# A literal, not importlib.metadata (0.15 s at start-up); a test keeps it equal to pyproject's.
__version__ = "0.1.0"
