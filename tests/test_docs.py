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
