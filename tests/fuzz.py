"""Seeded fuzzing of every reader the command line exposes: mutated files through `spatial` commands.

    python -m tests.fuzz                  # 40 mutations per reader (what CI runs, via tests/test_fuzz.py)
    python -m tests.fuzz --many 2000      # thousands, for a longer hunt (prints every failure)

For each reader a valid file is made, then mutated with a seeded random stream (tests/fuzz_inputs.py: bytes,
JSON values, each format's own structure, and a decompression bomb as the first cases of every compressed
reader). Each case is the command a user would run on that file (`spatial export ply FILE`, `spatial scene info
SCENE`, `spatial render MODEL --path FILE`, `spatial train splat SCENE --resume`, and for world files the loading
`spatial view` does before it serves), run by `spatial.cli.main` in a worker process: a fresh Python with an
address-space limit of 1 GB beyond what importing spatial takes, and an alarm per case. An outcome must be
exit 0, or exit 2 with one line (the error) on stderr; a bomb must be refused. A traceback, a hang, a
MemoryError or a worker whose resident memory passed 1 GB is a failure, reported with the case's seed so it can
be replayed.
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
import subprocess
import sys
import tempfile
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from tests.fuzz_inputs import BOMBS, READERS, make_seeds, mutate, restore_run

CASE_SECONDS = 60
MEMORY_BEYOND_IMPORT = 2**30  # address space a case may add to what importing spatial takes
MEMORY_PEAK = 2**30  # resident memory no worker may pass (an input under a megabyte must not take a gigabyte)


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
    if case["reader"] == "resume":
        restore_run(file)
    original = file.read_bytes()
    bombs = BOMBS.get(case["reader"], [])
    if case["index"] < len(bombs):
        file.write_bytes(bombs[case["index"]](original))
        case = {**case, "bomb": True}
    else:
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
    if case.get("bomb") and outcome["rc"] == 0:
        outcome["problem"] = "a decompression bomb was read as if it were a file"
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
          f"exit 2: {sum(o['rc'] == 2 for o in outcomes)}; peak worker memory {max(peaks, default=0) / 2**20:.0f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("SPATIAL_CACHE_DIR", tempfile.mkdtemp())
    sys.exit(main())
