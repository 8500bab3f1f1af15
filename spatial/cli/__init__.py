"""The `spatial` command: tyro subcommands, one dataclass with a `main()` per command.

Commands live in the modules of this package and are imported here; a command whose optional
dependency is missing still shows in `--help` and says what to install when run.
"""

from __future__ import annotations

import sys
from typing import Annotated, Union

import tyro

from spatial.cli.demo import Demo
from spatial.cli.scene import SceneCommand
from spatial.errors import SpatialError

Command = Union[
    Annotated[Demo, tyro.conf.subcommand("demo")],
    SceneCommand,
]


def main(args: list[str] | None = None) -> None:
    """Entry point of the `spatial` console script."""
    command = tyro.cli(Command, args=args, prog="spatial",
                       description="Turn phone videos and photo sets into 3D worlds.")
    try:
        command.main()
    except SpatialError as e:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
