"""Data-parallel splat training through torch.distributed on the CPU (gloo), launched as a user would: torchrun
with two processes gives the parameters of one process with batch size 2, bit for bit, densification and random
backgrounds included; and a process that dies ends the others with one line instead of a hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from spatial.formats.ply import load_ply
from tests.helpers import free_port

pytestmark = pytest.mark.slow

# 30 steps on the test-size orbit scene, densifying at steps 11, 20 and 30's refinement, torch rasterizer
TRAIN = ["--preset", "cpu", "--step.steps", "30", "--checkpoint-every", "0", "--step.render.backend", "torch",
         "--random-background"]
STRATEGY = ["strategy:default", "--strategy.refine-start", "10", "--strategy.refine-every", "10"]  # last: a subcommand


def spatial(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, **kw)


def test_two_processes_train_as_one_with_a_batch_of_two(orbit_path, tmp_path):
    # one thread, as torchrun gives each of its processes: sums over threads come in another order
    one = spatial("spatial", "train", "splat", str(orbit_path), *TRAIN, "--batch-size", "2", "--out",
                  str(tmp_path / "one"), *STRATEGY, env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr[-3000:]
    two = spatial("torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "spatial", "train",
                  "splat", str(orbit_path), *TRAIN, "--out", str(tmp_path / "two"), *STRATEGY)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    said = " ".join(two.stdout.split())  # rich wraps long lines where it likes
    assert "(2 processes)" in said and said.count("training splats on") == 1  # process 0 speaks
    a, b = load_ply(tmp_path / "one" / "splats.ply"), load_ply(tmp_path / "two" / "splats.ply")
    assert a["means"].shape[0] > 1500  # densified
    for name in a:  # exactly: each view's gradient is whole before the next is added, in either case
        assert torch.equal(b[name], a[name]), (name, float((b[name] - a[name]).abs().max()))
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        sorted(p.name for p in (tmp_path / "one").iterdir())  # one run folder, written by process 0 alone


def test_a_process_that_dies_ends_the_others_with_one_line(orbit_path, tmp_path):
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "spatial", "train", "splat", str(orbit_path), *TRAIN, "--step.steps", "100000",
               "--out", str(tmp_path / "run"), *STRATEGY]
    ranks = [subprocess.Popen(command, env={**os.environ, **env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    try:
        deadline = time.time() + 120
        while not any((tmp_path / "run").glob("config.json")) and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # into the training steps
        assert ranks[0].poll() is None and ranks[1].poll() is None
        ranks[1].send_signal(signal.SIGKILL)
        start = time.time()
        _, stderr = ranks[0].communicate(timeout=120)
        assert time.time() - start < 60
    finally:
        for process in ranks:
            process.kill()
    assert ranks[0].returncode == 2, stderr[-3000:]  # not -6: no abort while exiting (exit_process)
    assert "error: another training process stopped or stopped answering" in stderr
    assert "Traceback" not in stderr


def test_after_a_lost_process_the_exit_skips_shutdown_and_keeps_what_was_said():
    """exit_process leaves without the interpreter's shutdown once a collective failed (gloo's threads abort it
    there), and what was printed still reaches the pipes; otherwise it is sys.exit."""
    code = ("import atexit, sys; from spatial.training import distributed; atexit.register(print, 'shutdown ran'); "
            "print('said', end=''); print('error: said too', file=sys.stderr, end=''); "
            "distributed._peer_lost = {lost}; distributed.exit_process(2)")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a pipe's output usually is
    for lost, stdout in ((True, "said"), (False, "saidshutdown ran\n")):
        result = subprocess.run([sys.executable, "-c", code.format(lost=lost)], capture_output=True, text=True,
                                timeout=120, env=buffered)
        assert (result.returncode, result.stdout, result.stderr) == (2, stdout, "error: said too")


def test_a_run_resumes_on_another_number_of_processes(orbit_path, tmp_path):
    """The checkpoint process 0 writes holds the whole state: two processes start a run, one finishes it, and two
    take it further."""
    out = str(tmp_path / "run")
    first = spatial("torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "spatial", "train",
                    "splat", str(orbit_path), *TRAIN, "--step.steps", "10", "--out", out, *STRATEGY)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    second = spatial("spatial", "train", "splat", str(orbit_path), *TRAIN, "--step.steps", "20", "--resume", "--out",
                     out, *STRATEGY)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from" in second.stdout and "(step 10)" in " ".join(second.stdout.split())
    third = spatial("torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "spatial", "train",
                    "splat", str(orbit_path), *TRAIN, "--step.steps", "30", "--resume", "--out", out, *STRATEGY)
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-2000:]
    assert " ".join(third.stdout.split()).count("(step 20)") == 1  # said once, by process 0
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["step"] == 30


def test_a_nerf_trains_on_two_processes(orbit_path, tmp_path):
    """Each process renders half of every step's rays; the parameters are checked equal across the processes
    every 10 steps (after 10 steps of averaged gradients here), and process 0 alone writes the run."""
    done = spatial("torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "spatial", "train", "nerf",
                   str(orbit_path), "--preset", "tiny", "--steps", "12", "--checkpoint-every", "0", "--out",
                   str(tmp_path / "run"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "(2 processes)" in " ".join(done.stdout.split())
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["step"] == 12


def _diverging_rank(rank: int, port: int, queue) -> None:
    from spatial.training.distributed import processes_from_environment

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    processes = processes_from_environment("cpu")
    params = [torch.ones(5), torch.zeros(3)]
    processes.check_identical(params, 0)  # equal: passes
    params[1][0] = 1e-3 * rank  # one number apart on process 1
    try:
        processes.check_identical(params, 7)
        queue.put((rank, "no error"))
    except Exception as e:  # noqa: BLE001 - the message is the test
        queue.put((rank, str(e)))
    processes.close()


def test_processes_whose_parameters_differ_are_stopped():
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    workers = [context.Process(target=_diverging_rank, args=(r, port, queue)) for r in range(2)]
    for w in workers:
        w.start()
    found = dict(queue.get(timeout=120) for _ in range(2))
    for w in workers:
        w.join(timeout=60)
    for rank in (0, 1):
        assert found[rank] == ("training processes diverged at step 7: their parameters sum to 5 to 5.001; "
                               "this is a bug in spatial, please report it")
