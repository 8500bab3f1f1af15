"""What the live viewer costs training: the same run with and without `--viewer`, in the same script.

    python scripts/bench_viewer_overhead.py                       # default scene, cpu preset, 600 steps
    python scripts/bench_viewer_overhead.py --out scripts/results/viewer_overhead.json

Each configuration trains in its own process from the same seed (so the same Gaussians are
densified at the same steps), through `spatial.training.loop.run_training` as `spatial train splat` does:
1. baseline: no viewer;
2. viewer: the live viewer at its default refresh (5 s) with one connected client that receives
   everything the server sends (a websocket client standing in for a browser, so the browser's
   own drawing does not compete for this machine's cores);
3. viewer at a 2 s refresh, the same way.
It prints seconds of training per configuration, the slowdown against the baseline and the number
of refreshes sent. The target is a slowdown of at most 10% at the default refresh.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path


def child(steps: int, refresh: float | None, port: int) -> dict:
    import shutil
    import tempfile

    from spatial.scenes import make_scene
    from spatial.training.loop import LiveViewerOptions, run_training
    from spatial.training.methods import get_method

    scene = make_scene("orbit", "default")
    config = get_method("splat").preset_config("cpu")
    config.step.steps, config.checkpoint_every = steps, 0
    out = Path(tempfile.mkdtemp()) / "run"
    viewer = None if refresh is None else LiveViewerOptions("127.0.0.1", port, refresh, keep_open=False)
    received = {"messages": 0, "bytes": 0}
    if viewer is not None:
        threading.Thread(target=receive_all, args=(port, received), daemon=True).start()
    counted = {}
    import spatial_viewer.live as live

    original = live.LiveTraining.finished

    def finished(self, result):  # record what the session sent before it stops
        counted["refreshes"] = self.pushed
        original(self, result)

    live.LiveTraining.finished = finished
    start = time.perf_counter()
    result = run_training("splat", scene, out, config, resume=False, preset="cpu", viewer=viewer)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"seconds": round(result["train_seconds_this_session"], 2), "wall_s": round(time.perf_counter() - start, 1),
            "gaussians": result["gaussians"], "psnr": round(result["psnr"], 3),
            "refreshes": counted.get("refreshes", 0), "client_messages": received["messages"],
            "client_megabytes": round(received["bytes"] / 1e6, 1)}


def receive_all(port: int, received: dict) -> None:
    """A websocket client that reads every message the viewer sends (as a browser tab would)."""
    import viser
    from websockets.sync.client import connect

    for _ in range(200):  # the server starts after the scene loads
        try:
            with connect(f"ws://127.0.0.1:{port}", subprotocols=[f"viser-v{viser.__version__}"],
                         max_size=None, open_timeout=5) as ws:
                for message in ws:
                    received["messages"] += 1
                    received["bytes"] += len(message)
            return
        except OSError:
            time.sleep(0.25)
        except Exception:  # noqa: BLE001 - the server closing at the end of the run
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here (a .txt beside it)")
    parser.add_argument("--child", nargs=3, metavar=("STEPS", "REFRESH", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        steps, refresh, port = int(args.child[0]), args.child[1], int(args.child[2])
        print(json.dumps(child(steps, None if refresh == "none" else float(refresh), port)))
        return

    runs = {}
    for port, (name, refresh) in enumerate((("baseline", "none"), ("viewer_5s", "5"), ("viewer_2s", "2")), 7391):
        proc = subprocess.run([sys.executable, __file__, "--child", str(args.steps), refresh, str(port)],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if proc.returncode != 0:
            sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        runs[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name:10s} {runs[name]['seconds']:7.1f} s  {runs[name]['gaussians']:,} Gaussians  "
              f"{runs[name]['refreshes']} refreshes  client got {runs[name]['client_megabytes']} MB", flush=True)
    base = runs["baseline"]["seconds"]
    lines = [f"live viewer overhead: orbit default scene, cpu preset, {args.steps} steps, 2 threads"]
    for name, run in runs.items():
        run["slowdown"] = round(run["seconds"] / base - 1, 4)
        lines.append(f"  {name:10s} {run['seconds']:7.1f} s  slowdown {100 * run['slowdown']:+5.1f}%  "
                     f"{run['refreshes']:3d} refreshes  {run['gaussians']:,} Gaussians at the end  "
                     f"PSNR {run['psnr']:.2f}")
    target = runs["viewer_5s"]["slowdown"] <= 0.10
    lines.append(f"target (default refresh slows training by at most 10%): {'met' if target else 'NOT met'}")
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps({"steps": args.steps, "runs": runs}, indent=2) + "\n")
        args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
