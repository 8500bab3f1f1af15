"""The README quotes the code: preset schedules, the SPZ size, and the commands in its table all agree
with what the code says, so they cannot drift apart again."""

import re
from pathlib import Path

from spatial.cli import COMMANDS, plugin_commands
from spatial.configs.nerf import PRESETS as NERF_PRESETS
from spatial.configs.splat import PRESETS as SPLAT_PRESETS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def thousands(steps: int) -> str:
    return f"{steps // 1000}k steps" if steps % 1000 == 0 else f"{steps:,} steps"


def test_splat_preset_table_gives_each_presets_steps():
    for name, (_, config) in SPLAT_PRESETS.items():
        row = next(line for line in README.splitlines() if line.startswith(f"| `{name}` |"))
        assert thousands(config.step.steps) in row, (name, row)


def test_nerf_presets_sentence_gives_steps_and_rays():
    for name in ("default", "cpu"):
        config = NERF_PRESETS[name][1]
        quoted = f"`{name}` ("
        sentence = README[README.index(quoted, README.index("Presets live in `configs/nerf.py`")):][:120]
        assert f"{thousands(config.steps)} of {config.rays_per_batch} rays" in sentence, (name, sentence)


def test_spz_size_is_quoted_the_same_in_the_readme_and_the_help():
    from spatial.cli.export import export_commands
    from spatial.formats import spz

    for text in (export_commands()["spz"].__doc__, spz.__doc__):
        help_ratio = re.search(r"about \d+x smaller than\s+PLY", text).group(0)
        assert " ".join(help_ratio.split()) in README


def test_every_command_in_the_readme_table_exists():
    commands = {**COMMANDS, **plugin_commands()}
    quoted = re.findall(r"^\| `spatial ([a-z-]+)(?: ([a-z|\\-]+))?", README, flags=re.M)
    assert len(quoted) >= 10
    for group, subcommands in quoted:
        assert group in commands, group
        node = commands[group]
        if isinstance(node, tuple):
            children = node[1]() if callable(node[1]) else node[1]
            for sub in subcommands.replace("\\", "").split("|"):
                assert sub in children, f"spatial {group} {sub}"


ROOT = Path(__file__).resolve().parents[1]


def where_things_live(text: str) -> str:
    start = text.index("## Where things live")
    end = text.find("\n## ", start + 3)
    return text[start:] if end < 0 else text[start:end]


def named_paths(section: str) -> set[str]:
    """The files and folders a "Where things live" section names in backticks (`spatial/io/`, `loop.py`)."""
    return {p for p in re.findall(r"`([\w./-]+)`", section) if p.endswith(("/", ".py", ".md", ".sh"))}


def test_where_things_live_names_what_is_in_the_tree():
    """Both maps of the house name only files that exist, and every package folder and viewer file is on one."""
    sources = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts}
    names = {Path(p).name for p in sources}
    readme = where_things_live(README)
    viewer = where_things_live((ROOT / "viewer" / "README.md").read_text())
    for path in named_paths(readme):
        assert (ROOT / path).exists() if "/" in path.rstrip("/") else path.rstrip("/") in names, path
    for path in named_paths(viewer):
        assert (ROOT / "viewer" / path).exists() or (ROOT / path).exists(), path
    for folder in sorted(p for p in (ROOT / "spatial").iterdir() if (p / "__init__.py").is_file()):
        assert f"`spatial/{folder.name}/" in readme, f"spatial/{folder.name}/ is on no row of the README's map"
    for file in sorted((ROOT / "viewer").rglob("*.py")):
        name = str(file.relative_to(ROOT / "viewer"))
        assert file.name == "__init__.py" or f"`{name}`" in viewer, f"viewer/{name} is not in viewer/README.md"
