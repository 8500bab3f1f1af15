"""Seeded fuzzing of every reader the command line exposes: mutated files through `spatial` commands.

    python -m tests.fuzz                  # 40 mutations per reader (what CI runs, via tests/test_fuzz.py)
    python -m tests.fuzz --many 2000      # thousands, for a longer hunt (prints every failure)

For each reader a valid file is made, then mutated with a seeded random stream: truncations, bit
flips, huge counts, NaN/Infinity and out-of-range numbers, wrong JSON types, deleted keys, non-UTF-8
bytes. Each case is the command a user would run on that file (`spatial export ply FILE`, `spatial
scene info SCENE`, `spatial render MODEL --path FILE`, and for world files the loading `spatial view`
does before it serves), run by `spatial.cli.main` in a worker process: a fresh Python with an
address-space limit of 2 GB beyond what importing spatial takes, and an alarm per case. An outcome
must be exit 0, or exit 2 with one line (the error) on stderr. A traceback, a hang or a MemoryError is
a failure, reported with the case's seed so it can be replayed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

READERS = ("splat-ply", "points-ply", "splat", "spz", "spz4", "compressed-ply", "sog", "sog-meta", "glb",
           "colmap-bin", "colmap-text", "transforms", "blender", "camera-path", "world", "checkpoint")
CASE_SECONDS = 60
MEMORY_BEYOND_IMPORT = 2 * 2**30


# ---- valid seeds ------------------------------------------------------------------------------
def make_seeds(root: Path, facade: Path, orbit: Path) -> dict:
    """A valid file (or scene folder) per reader, and the command that reads it."""
    import torch

    from spatial.camera_path import orbit_path, save_camera_path
    from spatial.formats import save_splats
    from spatial.io import load_scene
    from spatial.io.colmap import write_colmap
    from spatial.render import rgb_to_sh
    from spatial_viewer.world import World

    g = torch.Generator().manual_seed(0)
    n = 64
    params = {"means": torch.randn(n, 3, generator=g) * 0.5, "quats": torch.randn(n, 4, generator=g),
              "scales": torch.full((n, 3), -3.0), "opacities": torch.zeros(n),
              "sh0": rgb_to_sh(torch.rand(n, 1, 3, generator=g)), "shN": torch.zeros(n, 3, 3)}
    for suffix in ("ply", "splat", "spz", "compressed.ply", "sog", "glb"):
        save_splats(params, root / f"model.{suffix}")
    save_splats(params, root / "model4.spz", spz_version=4)
    (root / "sog").mkdir()
    save_splats(params, root / "sog" / "meta.json")
    torch.save({"params": params, "step": 1, "config": {"downscale": 1}}, root / "model.pt")

    scene = load_scene(facade)
    for name, binary in (("colmap-bin", True), ("colmap-text", False)):
        folder = root / name
        write_colmap(scene, folder / "sparse" / "0", binary=binary)
        (folder / "images").symlink_to(facade / "images")
    shutil.copytree(facade, root / "transforms", ignore=shutil.ignore_patterns("images", "sparse", "ground_truth"))
    (root / "transforms" / "images").symlink_to(facade / "images")
    blender = root / "blender"
    shutil.copytree(orbit, blender, ignore=shutil.ignore_patterns("train", "test", "ground_truth"))
    for split in ("train", "test"):
        (blender / split).symlink_to(orbit / split)

    path = orbit_path(scene.cameras, frames=3, width=24, height=16)
    save_camera_path(path, root / "path.json")
    world = World()
    world.add_layer("layer", params)
    world.save_world(root / "scene.world.json")

    out = root / "out"
    return {
        "splat-ply": (root / "model.ply", ["export", "splat", "{file}", "--out", f"{out}/x.splat"]),
        "splat": (root / "model.splat", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "spz": (root / "model.spz", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "spz4": (root / "model4.spz", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "compressed-ply": (root / "model.compressed.ply", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "sog": (root / "model.sog", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "sog-meta": (root / "sog" / "meta.json", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "glb": (root / "model.glb", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "checkpoint": (root / "model.pt", ["export", "ply", "{file}", "--out", f"{out}/x.ply"]),
        "points-ply": (root / "transforms" / "sparse_pc.ply", ["scene", "info", "{scene}"]),
        "colmap-bin": (root / "colmap-bin" / "sparse" / "0" / "cameras.bin", ["scene", "info", "{scene}"]),
        "colmap-text": (root / "colmap-text" / "sparse" / "0" / "images.txt", ["scene", "info", "{scene}"]),
        "transforms": (root / "transforms" / "transforms.json", ["scene", "info", "{scene}"]),
        "blender": (root / "blender" / "transforms_train.json", ["scene", "info", "{scene}"]),
        "camera-path": (root / "path.json", ["render", str(root / "model.ply"), "--path", "{file}", "--out",
                                             f"{out}/frames", "--device", "cpu"]),
        "world": (root / "scene.world.json", ["view", "{file}"]),
    }


# ---- mutations --------------------------------------------------------------------------------
HOSTILE_VALUES = [float("nan"), float("inf"), -float("inf"), -1, 0, 1e30, 10**20, -(10**20), 2**31, 2**63, 1e-30,
                  "x", "", [], {}, None, True, [1, 2, 3], [[0] * 3] * 3, "\udcff", 0.5, 3]


def mutate_json(data, rng: random.Random):
    """A structural mutation: one value somewhere replaced by a hostile one, or a key deleted."""
    data = json.loads(json.dumps(data))
    slots = []

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            slots.append((node, key))
            walk(value)

    walk(data)
    if not slots:
        return rng.choice(HOSTILE_VALUES)
    node, key = rng.choice(slots)
    if isinstance(node, dict) and rng.random() < 0.2:
        del node[key]
    else:
        node[key] = rng.choice(HOSTILE_VALUES)
    return data


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "flip", "huge", "insert", "zero"])
    data = bytearray(data)
    if kind == "truncate" or len(data) < 8:
        return bytes(data[:rng.randrange(len(data) + 1)])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind in ("huge", "zero"):
        i = rng.randrange(len(data) - 8)
        value = 0 if kind == "zero" else rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFFFFFFFFFF])
        width = rng.choice([4, 8])
        data[i:i + width] = struct.pack("<Q", value)[:width]
    else:
        i = rng.randrange(len(data))
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def mutate_ply_header(data: bytes, rng: random.Random) -> bytes:
    end = data.index(b"end_header")
    header = data[:end].decode("ascii").split("\n")
    i = next(k for k, line in enumerate(header) if line.startswith("element vertex"))
    header[i] = f"element vertex {rng.choice([0, 1, 10**6, 10**12, 2**31, 2**64 + 5, 123])}"
    if rng.random() < 0.3:
        k = rng.randrange(len(header))
        header[k] = header[k].replace("float", rng.choice(["double", "uchar", "list uchar float", "bogus"]))
    return "\n".join(header).encode("ascii") + data[end:]


def mutate(file: Path, original: bytes, rng: random.Random) -> None:
    """Write one mutation of `original` to `file`."""
    if file.suffix == ".json" and rng.random() < 0.75:
        data = mutate_json(json.loads(original), rng)
        text = json.dumps(data, allow_nan=True, ensure_ascii=False)
        file.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    elif file.suffix == ".json" and rng.random() < 0.5:
        i = rng.randrange(len(original))
        file.write_bytes(original[:i] + b"\xff\xfe\x80" + original[i:])  # not UTF-8
    elif file.suffix == ".ply" and rng.random() < 0.4:
        file.write_bytes(mutate_ply_header(original, rng))
    else:
        file.write_bytes(mutate_bytes(original, rng))


# ---- running cases ----------------------------------------------------------------------------
def plan(seeds: dict, readers, count: int, seed: int) -> list[dict]:
    return [{"reader": reader, "index": i, "seed": seed * 1_000_003 + i * 7919 + READERS.index(reader)}
            for reader in readers for i in range(count)]


class Hang(Exception):
    pass


def run_case(case: dict, seeds: dict, scratch: Path) -> dict:
    """Mutate the reader's file in a copy of its folder, run its command, restore; the outcome."""
    from spatial.cli import main

    file, argv = seeds[case["reader"]]
    file = Path(file)
    original = file.read_bytes()
    mutate(file, original, random.Random(case["seed"]))
    scene = file.parent if file.parent.name not in ("0",) else file.parent.parent.parent
    argv = [a.replace("{file}", str(file)).replace("{scene}", str(scene)) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    outcome: dict = {**case}
    signal.alarm(CASE_SECONDS)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            if argv[0] == "view":
                _view_load(Path(argv[1]), scratch)
            else:
                main(argv)
        outcome["rc"] = 0
    except SystemExit as e:
        outcome["rc"] = e.code if isinstance(e.code, int) else 1
    except Hang:
        outcome["rc"], outcome["problem"] = "hang", f"no answer within {CASE_SECONDS} s"
    except BaseException:  # noqa: BLE001 - anything uncaught is what this looks for
        outcome["rc"], outcome["problem"] = "traceback", traceback.format_exc()[-2000:]
    finally:
        signal.alarm(0)
        file.write_bytes(original)
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, exist_ok=True)
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    outcome["stderr"] = lines[-3:]
    if outcome["rc"] == 2 and (len(lines) != 1 or not lines[0].startswith("error: ")):
        outcome["problem"] = f"exit 2 but stderr is not one error line: {lines[:5]}"
    elif outcome["rc"] not in (0, 2) and "problem" not in outcome:
        outcome["problem"] = f"exit {outcome['rc']}: {lines[-5:]}"
    elif outcome["rc"] == 0 and any(re.search(r"\w+Warning: ", line) for line in lines):
        outcome["problem"] = f"exit 0 with a Python warning on stderr: {lines[:5]}"  # silent garbage in, out
    return outcome


def _view_load(path: Path, scratch: Path) -> None:
    """What `spatial view FILE` does before serving: load every input (errors as the CLI prints them)."""
    from rich.console import Console

    from spatial.errors import SpatialError
    from spatial_viewer.cli import build_app

    try:
        build_app([path], scratch / "edited.ply", thumbnails=False)
    except SpatialError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


def worker(cases_file: Path, seeds_file: Path, results_file: Path) -> None:
    """One worker process: imports spatial, limits its address space, runs its cases one by one."""
    import torch  # noqa: F401 - imported before the limit is set: the limit is on what the cases add

    import spatial.cli  # noqa: F401
    import spatial_viewer.cli  # noqa: F401

    torch.set_num_threads(1)
    size = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize:"))) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + MEMORY_BEYOND_IMPORT, resource.RLIM_INFINITY))

    def on_alarm(*_):
        raise Hang

    signal.signal(signal.SIGALRM, on_alarm)
    seeds = {k: (Path(f), argv) for k, (f, argv) in json.loads(seeds_file.read_text()).items()}
    scratch = Path(tempfile.mkdtemp())
    with open(results_file, "w") as results:
        for case in json.loads(cases_file.read_text()):
            results.write(json.dumps(run_case(case, seeds, scratch)) + "\n")
            results.flush()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (pytest) that forked us
    peak = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))) * 1024
    with open(results_file, "a") as results:
        results.write(json.dumps({"peak_rss_bytes": peak}) + "\n")


def fuzz(root: Path, facade: Path, orbit: Path, count: int, seed: int = 0, workers: int = 2,
         readers=READERS) -> tuple[list[dict], list[int]]:
    """Run `count` mutations per reader in `workers` processes; (every outcome, each worker's peak RSS)."""
    seeds = make_seeds(root, facade, orbit)
    outcomes, peaks, procs = [], [], []
    cases = plan(seeds, readers, count, seed)
    for w in range(workers):
        # every worker mutates its own copy of the seed files
        copy = root / f"worker{w}"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns("worker*"))
        mine = {k: (str(copy / Path(f).relative_to(root)), [a.replace(str(root), str(copy)) for a in argv])
                for k, (f, argv) in seeds.items()}
        (copy / "seeds.json").write_text(json.dumps(mine))
        (copy / "cases.json").write_text(json.dumps(cases[w::workers]))
        command = [sys.executable, "-m", "tests.fuzz", "--worker", str(copy / "cases.json"), str(copy / "seeds.json"),
                   str(copy / "results.jsonl")]
        procs.append((subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1]), copy))
    for proc, copy in procs:
        proc.wait(timeout=CASE_SECONDS * (len(cases) // workers + 2))
        for line in (copy / "results.jsonl").read_text().splitlines():
            entry = json.loads(line)
            (peaks.append(entry["peak_rss_bytes"]) if "peak_rss_bytes" in entry else outcomes.append(entry))
        if proc.returncode != 0:
            outcomes.append({"reader": "worker", "rc": proc.returncode, "problem": "the worker process died"})
    return outcomes, peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--many", type=int, default=40, help="mutations per reader")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readers", nargs="+", default=list(READERS), choices=READERS)
    parser.add_argument("--worker", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    from spatial.scenes import make_scene

    with tempfile.TemporaryDirectory() as tmp:
        outcomes, peaks = fuzz(Path(tmp), make_scene("facade", "test"), make_scene("orbit", "test"), args.many,
                               args.seed, readers=args.readers)
    bad = [o for o in outcomes if "problem" in o]
    for o in bad:
        print(f"--- {o['reader']} case {o.get('index')} (seed {o.get('seed')}): {o['problem']}")
    counts = {r: sum(o["reader"] == r for o in outcomes) for r in args.readers}
    print(f"{len(outcomes)} cases {counts}; {len(bad)} failed; exit 0: {sum(o['rc'] == 0 for o in outcomes)}, "
          f"exit 2: {sum(o['rc'] == 2 for o in outcomes)}; peak worker memory {max(peaks) / 2**20:.0f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("SPATIAL_CACHE_DIR", tempfile.mkdtemp())
    sys.exit(main())
