"""Diffusion Desk: a desktop studio for Stable Diffusion in your own AWS account."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diffusion-desk")
except PackageNotFoundError:  # running from a frozen bundle or a bare checkout
    __version__ = "0.1.0"
