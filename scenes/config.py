"""Configuration of a synthetic scene render, and the named sizes of the built-in scenes."""

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


SIZES: dict[str, SceneSize] = {
    "test": SceneSize(width=64, height=48, views=16, supersample=2, points=1500),  # unit tests, about a second
    "default": SceneSize(width=256, height=192, views=48, supersample=3, points=8000),  # the README's main job
    "large": SceneSize(width=640, height=480, views=96, supersample=3, points=30000),  # benchmarks
}
"""Sizes of the built-in synthetic scenes (`spatial scene make NAME --size SIZE`)."""
