"""`spatial demo`: the README's main job on the built-in default scene."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.console import Console


@dataclass
class Demo:
    """Render the default synthetic scene (once; it is cached), load it and print its summary."""

    scene: Literal["orbit", "facade"] = "orbit"
    """Built-in scene to use."""
    size: Literal["test", "default", "large"] = "default"
    """Scene size preset (configs/scenes.py)."""

    def main(self) -> None:
        from spatial.cli.scene import make_with_progress, summary_table
        from spatial.io import load_scene

        console = Console()
        path = make_with_progress(self.scene, self.size)
        scene = load_scene(path)
        console.print(summary_table(scene, f"built-in scene '{self.scene}' ({self.size})"))
        console.print(f"\nInspect it again with: [bold]spatial scene info {path}[/]")
