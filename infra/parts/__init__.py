"""Constructs of the Diffusion Desk stacks, one idea per module."""
