"""The `spatial` command: a tree of command groups whose leaves are dataclasses with a `main()`.

Each leaf is parsed by tyro (docstrings become `--help`); groups are dispatched here, so a group
with a single command needs no placeholder siblings. A group's commands may be a function that lists
them (the registries of methods and formats), and a leaf may build its class from the arguments
(`command_for(args)`: `spatial train` does, so that --preset sets the other options' defaults).
"""

from __future__ import annotations

import sys

import tyro

from spatial.cli.demo import Demo
from spatial.cli.export import export_commands
from spatial.cli.process import ProcessImages, ProcessImport, ProcessVideo
from spatial.cli.render import Render
from spatial.cli.scene import Convert, Info, Make
from spatial.cli.train import train_commands
from spatial.errors import SpatialError

COMMANDS: dict = {
    "demo": Demo,
    "scene": ("Scene folders: inspect, convert between layouts, make synthetic ones.",
              {"info": Info, "convert": Convert, "make": Make}),
    "process": ("Turn photos or a video into a scene folder (structure from motion with COLMAP).",
                {"images": ProcessImages, "video": ProcessVideo, "import": ProcessImport}),
    "train": ("Train a model on a scene.", train_commands),  # one per method in spatial.training.methods
    "export": ("Export a trained model: splat files, a mesh, or a point cloud.", export_commands),
    "render": Render,
}
DESCRIPTION = "Turn phone videos and photo sets into 3D worlds."


def _summary(node) -> str:
    if isinstance(node, tuple):
        return node[0]
    return (node.__doc__ or "").strip().splitlines()[0]


def _group_help(path: list[str], description: str, children: dict) -> str:
    prog = " ".join(["spatial", *path])
    lines = [f"usage: {prog} [-h] {{{','.join(children)}}}", "", description, "", "commands:"]
    width = max(len(name) for name in children)
    lines += [f"  {name.ljust(width)}  {_summary(node)}" for name, node in children.items()]
    lines += ["", f"Run '{prog} COMMAND --help' for the options of a command."]
    return "\n".join(lines)


def plugin_commands() -> dict:
    """Commands that other installed packages add through the `spatial.commands` entry point
    (the browser viewer's `spatial view` is one): `spatial` itself never imports them by name."""
    from importlib.metadata import entry_points

    return {ep.name: ep.load() for ep in entry_points(group="spatial.commands")}


def resolve(args: list[str]) -> tuple[type, list[str], list[str]]:
    """The leaf command named by the leading words of `args`, its path, and the remaining args."""
    node, path, description = {**COMMANDS, **plugin_commands()}, [], DESCRIPTION
    while isinstance(node, dict):
        if not args or args[0] in ("-h", "--help"):
            print(_group_help(path, description, node))
            sys.exit(0 if args else 2)
        name = args[0]
        if name not in node:
            prog = " ".join(["spatial", *path])
            print(f"{prog}: unknown command {name!r}; choose from {', '.join(node)}", file=sys.stderr)
            sys.exit(2)
        path.append(name)
        args = args[1:]
        node = node[name]
        if isinstance(node, tuple):
            description, node = node
        if callable(node) and not isinstance(node, type):
            node = node()
    if hasattr(node, "command_for"):
        node = node.command_for(args)
    return node, path, args


def main(args: list[str] | None = None) -> None:
    """Entry point of the `spatial` console script."""
    args = sys.argv[1:] if args is None else list(args)
    leaf, path, rest = resolve(args)
    command = tyro.cli(leaf, args=rest, prog=" ".join(["spatial", *path]))
    try:
        command.main()
    except SpatialError as e:
        from rich.console import Console
        from rich.markup import escape

        from spatial.training.distributed import exit_process

        # escaped: a message may hold brackets (a file name, a library's own words) that are not markup
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        exit_process(2)  # sys.exit(2), except after another training process was lost
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
