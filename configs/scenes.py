"""Sizes of the built-in synthetic scenes (`spatial scene make NAME --size SIZE`).

`test` is for unit tests (generated in about a second); `default` is what the README's
main job trains on; `large` is for benchmarks.
"""

from spatial.scenes.config import SceneSize

SIZES: dict[str, SceneSize] = {
    "test": SceneSize(width=64, height=48, views=16, supersample=2, points=1500),
    "default": SceneSize(width=256, height=192, views=48, supersample=3, points=8000),
    "large": SceneSize(width=640, height=480, views=96, supersample=3, points=30000),
}
