"""Configuration of a synthetic scene render."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SceneSize:
    width: int = 256
    """Image width in pixels."""
    height: int = 192
    """Image height in pixels."""
    views: int = 48
    """Number of rendered views (every 8th is a test view)."""
    supersample: int = 3
    """Sub-pixel grid per side for anti-aliasing (3 means 9 rays per pixel)."""
    points: int = 8000
    """Sparse points sampled from the training views' true surfaces, like an SfM point cloud."""
