"""The `spatial` command: help for every subcommand, the main job, and one-line errors."""

import subprocess
import sys

import pytest

from spatial.cli import main


def subcommand_paths() -> list[list[str]]:
    """Every command path, found by walking `--help` output, so a new command cannot go untested."""
    import re

    found, todo = [], [[]]
    while todo:
        path = todo.pop()
        out = run_help(path)
        # Subcommands are the usage line's last token: `usage: spatial scene [-h] {info,convert,make}`.
        usage = re.search(r"^usage: spatial.*?\{([\w,-]+)\}\s*$", out, re.M)
        subs = usage.group(1).split(",") if usage else []
        assert len(path) < 4, f"runaway subcommand walk at {path}"
        found.append(path)
        todo.extend(path + [s] for s in subs)
    return found


def run_help(path: list[str]) -> str:
    from contextlib import redirect_stdout
    from io import StringIO

    buffer = StringIO()
    with redirect_stdout(buffer), pytest.raises(SystemExit) as e:
        main(path + ["--help"])
    assert e.value.code == 0
    return buffer.getvalue()


def test_every_subcommand_has_help():
    paths = subcommand_paths()
    assert ["scene", "info"] in paths and ["demo"] in paths and ["scene", "convert"] in paths
    for path in paths:
        text = run_help(path)
        assert "usage: spatial" in text
        if path:  # each command and option explains itself
            assert "(required)" in text or "options" in text


def test_demo_runs_on_the_test_scene(capsys, tmp_path):
    main(["demo", "--size", "test", "--steps", "20", "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert "16 (14 train, 2 test)" in out and "blender" in out
    assert "test PSNR" in out and (tmp_path / "demo" / "splats.ply").is_file()


def test_scene_convert_round_trip(orbit_path, tmp_path, capsys):
    from spatial import load_scene

    main(["scene", "convert", str(orbit_path), str(tmp_path / "c"), "--to", "colmap-text"])
    main(["scene", "convert", str(tmp_path / "c"), str(tmp_path / "n"), "--to", "nerfstudio"])
    main(["scene", "info", str(tmp_path / "n")])
    a, b = load_scene(orbit_path), load_scene(tmp_path / "n")
    assert sorted(a.image_names) == b.image_names and len(b.points) == len(a.points)
    for name, c2w in zip(a.image_names, a.cameras.cam_to_world):
        assert (c2w - b.cameras.cam_to_world[b.image_names.index(name)]).abs().max() < 1e-5
    assert (a.load_image(0) == b.load_image(b.image_names.index(a.image_names[0]))).all()  # same white background
    assert (tmp_path / "c" / "sparse" / "0" / "cameras.txt").is_file()
    assert (tmp_path / "n" / "images" / "train" / "r_001.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["scene", "info", "does/not/exist"], "does/not/exist: no such file or folder"),
    (["scene", "info", "."], "no scene found"),
])
def test_bad_input_is_one_line_without_traceback(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "spatial", *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("method, flag, steps", [("splat", ["--preset", "cpu"], 2000),
                                                 ("splat", ["--preset=default"], 30000),
                                                 ("nerf", ["--preset", "tiny"], 300), ("nerf", [], None)])
def test_the_preset_sets_every_other_options_default_and_options_override_it(method, flag, steps, tmp_path):
    import tyro

    from spatial.cli import resolve
    from spatial.training.methods import get_method

    leaf, path, rest = resolve(["train", method, str(tmp_path), *flag])
    command = tyro.cli(leaf, args=rest)
    expected = steps if steps is not None else get_method(method).steps(get_method(method).preset_config("auto"))
    assert path == ["train", method] and get_method(method).steps(command.config) == expected
    override = ["--step.steps", "7"] if method == "splat" else ["--steps", "7"]
    leaf, _, rest = resolve(["train", method, str(tmp_path), *flag, *override])
    assert get_method(method).steps(tyro.cli(leaf, args=rest).config) == 7


@pytest.mark.parametrize("flag", ["--step.render.sh-degree", "--step.render.absgrad"])
def test_training_offers_no_render_flag_that_the_step_overrides(flag, tmp_path, capsys):
    """The step renders at its SH schedule's degree and turns absgrad on for the strategy that reads it, so
    neither is a flag; the settings that do take effect are."""
    import tyro

    from spatial.cli import resolve

    leaf, _, rest = resolve(["train", "splat", str(tmp_path), "--step.render.eps2d", "0.1"])
    assert tyro.cli(leaf, args=rest).config.step.render.eps2d == 0.1
    leaf, _, rest = resolve(["train", "splat", str(tmp_path), flag, "0" if "degree" in flag else ""])
    with pytest.raises(SystemExit) as exit_:
        tyro.cli(leaf, args=[a for a in rest if a])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err
