"""The shape of the house: imports flow one way, the library never reaches into the CLI or the viewer,
files stay readable, and an install adds only the `spatial` and `spatial_viewer` import names."""

from __future__ import annotations

import ast
import dataclasses
import shutil
from importlib.metadata import distribution
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
# import name -> folder, as pyproject.toml maps them
PACKAGE_DIRS = {"spatial": "spatial", "spatial.configs": "configs", "spatial.scenes": "scenes",
                "spatial_viewer": "viewer"}
# A file holds one concern and reads top to bottom. Past ASK_AT lines a reviewer asks whether it holds two; the
# file answers in its docstring with a line starting LONG_FILE_NOTE (why it is one concern, and how it reads), or it
# is split where the concerns part. Splitting a class across files to stay under the number is the wrong answer:
# the parts then call each other's methods and neither reads alone.
ASK_AT = 400
LONG_FILE_NOTE = "One file:"


def modules() -> dict[str, Path]:
    found = {}
    for name, folder in PACKAGE_DIRS.items():
        for file in (ROOT / folder).rglob("*.py"):
            parts = [*name.split("."), *file.relative_to(ROOT / folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports, at the top or inside functions alike."""
    mods = modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, file in mods.items():
        package = mod if file.name == "__init__.py" else mod.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                edges |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                edges |= {known(f"{base}.{a.name}") if f"{base}.{a.name}" in mods else known(base)
                          for a in node.names}
        graph[mod] = edges - {None, mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "spatial.trained" in graph["spatial"] and "spatial.cli" in graph["spatial.__main__"]


def test_no_import_circles():
    assert cycles(import_graph()) == []


def folder_of(module: str, files: dict[str, Path]) -> str:
    """The package a module's file sits in (its own name for a package's __init__)."""
    return module if files[module].name == "__init__.py" else module.rpartition(".")[0]


def two_way_folders(graph: dict[str, set[str]], files: dict[str, Path]) -> list[str]:
    """Pairs of sibling folders that import each other, each with one import either way. A package and a folder
    inside it may (the package's own modules are the basics its folders share, and it gathers their names);
    two folders side by side depend one way only, whatever names they install under."""
    edges: dict[tuple[str, str], str] = {}
    for module, imported in graph.items():
        for other in imported:
            a, b = folder_of(module, files), folder_of(other, files)
            if a != b:
                edges.setdefault((a, b), f"{module} imports {other}")
    nested = lambda a, b: a.startswith(b + ".") or b.startswith(a + ".")  # noqa: E731
    return sorted(f"{a} <-> {b}: {edges[a, b]}; {edges[b, a]}" for a, b in edges
                  if a < b and (b, a) in edges and not nested(a, b))


def test_the_checker_sees_two_folders_that_import_each_other():
    files = {m: Path(f"{m.replace('.', '/')}.py") for m in ("p.a.x", "p.b.y", "p.a.z", "p.c")}
    files["p.a"] = Path("p/a/__init__.py")
    graph = {"p.a.x": {"p.b.y"}, "p.b.y": {"p.a.z"}, "p.a.z": {"p.c"}, "p.c": {"p.a"}, "p.a": set()}
    assert two_way_folders(graph, files) == ["p.a <-> p.b: p.a.x imports p.b.y; p.b.y imports p.a.z"]


def test_folders_depend_on_each_other_one_way():
    assert two_way_folders(import_graph(), modules()) == []


def test_the_library_imports_neither_the_cli_nor_the_viewer():
    graph = import_graph()
    for mod, imported in graph.items():
        if mod.startswith("spatial.") and not mod.startswith(("spatial.cli", "spatial_viewer")) \
                and mod != "spatial.__main__":
            assert not {m for m in imported if m.startswith("spatial.cli")}, mod
        if mod == "spatial" or mod.startswith("spatial."):
            assert not {m for m in imported if m.startswith("spatial_viewer")}, mod


def long_files_without_a_note(files: dict[str, str]) -> list[str]:
    """Files past ASK_AT lines whose docstring does not say why they are one concern."""
    out = []
    for name, text in files.items():
        lines = text.splitlines()
        if len(lines) > ASK_AT:
            try:
                doc = ast.get_docstring(ast.parse(text)) or ""
            except SyntaxError:
                doc = ""
            if not any(line.startswith(LONG_FILE_NOTE) for line in doc.splitlines()):
                out.append(f"{name} ({len(lines)} lines)")
    return out


def test_the_long_file_rule_asks_for_a_note_in_the_docstring():
    body = "x = 1\n" * ASK_AT
    assert long_files_without_a_note({"short.py": body[: -len("x = 1\n")], "long.py": body + "x = 2\n"}) \
        == [f"long.py ({ASK_AT + 1} lines)"]
    noted = f'"""A reader.\n\n{LONG_FILE_NOTE} the header, the records and their checks read in order."""\n'
    assert long_files_without_a_note({"noted.py": noted + body}) == []
    assert long_files_without_a_note({"comment.py": f"# {LONG_FILE_NOTE} in a comment\n" + body}) != []


def test_long_files_say_why_they_are_one_concern():
    files = {str(file.relative_to(ROOT)): file.read_text() for folder in ("spatial", "viewer", "configs", "scenes")
             for file in (ROOT / folder).rglob("*.py")}
    assert long_files_without_a_note(files) == []


def test_pyproject_lists_every_package_and_installs_two_import_names():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["package-dir"] == PACKAGE_DIRS
    packages = {mod for mod, file in modules().items() if file.name == "__init__.py"}
    assert set(tool["packages"]) == packages
    top_level = distribution("spatial").read_text("top_level.txt")
    if top_level is not None:  # what pip recorded for this install (editable installs list it too)
        assert set(top_level.split()) == {"spatial", "spatial_viewer"}


def test_every_registry_line_names_what_exists():
    import importlib
    import typing

    from spatial.cli.scene import Convert
    from spatial.formats import SPLAT_FORMATS
    from spatial.io import SCENE_LAYOUTS, writable_layouts
    from spatial.process.mappers import MAPPERS
    from spatial.process.matchers import MATCHERS
    from spatial.process.sfm import SfMConfig
    from spatial.render import BACKENDS, RenderOptions
    from spatial.training.methods import METHODS, get_method

    assert set(typing.get_args(typing.get_type_hints(RenderOptions)["backend"])) == {"auto", *BACKENDS}
    assert set(typing.get_args(typing.get_type_hints(SfMConfig)["mapper"])) == {"auto", *MAPPERS}
    assert set(typing.get_args(typing.get_type_hints(SfMConfig)["matcher"])) == {"auto", *MATCHERS}
    assert set(typing.get_args(typing.get_args(typing.get_type_hints(Convert, include_extras=True)["to"])[0])) \
        == set(writable_layouts()) == {"nerfstudio", "colmap", "colmap-text"}
    for layout in SCENE_LAYOUTS.values():
        module = importlib.import_module(layout.module)
        assert callable(module.detect) and callable(module.load), layout.module
        assert layout.writer is None or callable(getattr(module, layout.writer)), layout.name
    for name, (module, function) in BACKENDS.items():
        if name != "gsplat":  # importing gsplat's module is safe, but it is never run without CUDA
            assert callable(getattr(importlib.import_module(module), function))
    for fmt in SPLAT_FORMATS.values():
        module = importlib.import_module(fmt.module)
        assert callable(module.load) and callable(module.save), fmt.module
    for name in METHODS:
        method = get_method(name)
        assert method.cpu_preset in method.presets and method.gpu_preset in method.presets
        assert all(isinstance(config, method.config_type) for _, config in method.presets.values())


def test_a_toy_backend_is_one_file_and_one_registry_line(tmp_path, monkeypatch):
    """A backend module written from scratch and one `BACKENDS` entry: `rasterize` runs it by name (the command
    line's choices are made from the same table when spatial/render/options.py is imported)."""
    import torch

    from spatial.render import BACKENDS, RenderOptions, backend_for, rasterize
    from tests.helpers import camera, random_gaussians

    (tmp_path / "toy_backend.py").write_text(
        "from spatial.render.torch_backend import rasterize_torch\n"
        "calls = []\n"
        "def rasterize_toy(*args):\n"
        "    calls.append(args[7:9])  # width, height\n"
        "    out = rasterize_torch(*args)\n"
        "    out.rgb = 1 - out.rgb\n"
        "    return out\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BACKENDS, "toy", ("toy_backend", "rasterize_toy"))
    means, quats, scales, opacities, rgb = random_gaussians(30, seed=2)
    w2c, K = camera(16, 12)
    options = RenderOptions(sh_degree=None, backend="toy")
    out = rasterize(means, quats, scales, opacities, rgb, w2c, K, 16, 12, options=options)
    reference = rasterize(means, quats, scales, opacities, rgb, w2c, K, 16, 12,
                          options=RenderOptions(sh_degree=None, backend="torch"))
    import toy_backend

    assert backend_for("cpu", options) == "toy" and toy_backend.calls == [(16, 12)]
    assert torch.allclose(out.rgb, 1 - reference.rgb)
    monkeypatch.delitem(BACKENDS, "toy")
    with pytest.raises(ValueError, match="unknown render backend 'toy'; choose from auto, torch, cpu, gsplat"):
        rasterize(means, quats, scales, opacities, rgb, w2c, K, 16, 12, options=options)


def test_a_toy_scene_layout_is_one_file_and_one_registry_line(tmp_path, monkeypatch, orbit_path):
    """A layout module written from scratch (a nerfstudio file under another name) and one `SCENE_LAYOUTS` line:
    `load_scene` detects and loads it, `write_scene` writes it, and the scene comes back the same."""
    import torch

    from spatial.errors import SpatialError
    from spatial.io import SCENE_LAYOUTS, SceneLayout, detect_format, load_scene, write_scene

    (tmp_path / "toy_layout.py").write_text(
        "from dataclasses import replace\n"
        "from spatial.io.nerfstudio import load_transforms, write_transforms\n"
        "def detect(path):\n"
        "    return (path / 'toy.json').is_file()\n"
        "def load(path, test_every):\n"
        "    return replace(load_transforms(path / 'toy.json', test_every), source_format='toy')\n"
        "def write(scene, folder):\n"
        "    write_transforms(scene, folder / 'toy.json')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(SCENE_LAYOUTS, "toy", SceneLayout("toy", "toy.json", "toy_layout", writer="write"))
    scene = load_scene(orbit_path)
    out = tmp_path / "scene"
    out.mkdir()
    for name in scene.image_names:  # copied: a scene's files stay in its folder (spatial/io/paths.py)
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scene.image_root / name, out / name)
    write_scene(dataclasses.replace(scene, image_paths=[out / n for n in scene.image_names], image_root=out, root=out),
                out, "toy")
    assert detect_format(out) == "toy"
    back = load_scene(out)
    assert back.source_format == "toy" and sorted(back.image_names) == sorted(scene.image_names)
    order = [back.image_names.index(name) for name in scene.image_names]
    assert torch.allclose(back.cameras.cam_to_world[order], scene.cameras.cam_to_world, atol=1e-5)
    assert sorted(back.image_names[i] for i in back.test_ids) == sorted(scene.image_names[i] for i in scene.test_ids)
    monkeypatch.delitem(SCENE_LAYOUTS, "toy")
    with pytest.raises(SpatialError, match="unknown scene layout 'toy'; choose from blender, nerfstudio, colmap"):
        write_scene(scene, out, "toy")
