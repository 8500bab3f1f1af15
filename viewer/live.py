"""The live training view: `spatial train ... --viewer` serves the browser viewer while it trains.

`spatial.training.loop.run_training` finds this class through the `spatial.live_viewers` entry point and
calls it from the training loop:

    live = LiveTraining(trainer, options)   # starts the server, draws the training cameras
    live.on_step(stats)                     # every step: panel text, a snapshot every few seconds, pause
    live.finished(result)                   # final model and test scores
    live.stop()

The training thread only copies the model (`trainer.snapshot()`, a few milliseconds); turning it into
browser data and sending it happens on a sender thread, so a refresh costs training little
(measured by scripts/bench_viewer_overhead.py).
"""

from __future__ import annotations

import threading
import time

from spatial.camera_path import scene_frame
from spatial.trained import SplatModel
from spatial_viewer.app import ViewerApp
from spatial_viewer.layers import camera_thumbnails
from spatial_viewer.world import World

LAYER = "training"


class LiveTraining:
    def __init__(self, trainer, options, thumbnails: bool = True):
        self.trainer, self.options = trainer, options
        scene = trainer.scene
        background = tuple(trainer.background.tolist())  # what the model is trained against
        self.app = ViewerApp(World(), [], scene.cameras, camera_thumbnails(scene) if thumbnails else None,
                             trainer.out / "edited.ply", background, scene_frame(scene.cameras)[1].numpy(),
                             editable=False)
        self.app.start(options.host, options.port)
        self.url = self.app.url
        self.paused = threading.Event()  # asked for by the Pause button
        self.holding = threading.Event()  # the training thread is waiting (the step in flight has finished)
        self.pushed = 0  # snapshots handed to the sender (for tests and the panel)
        self._stats: dict = {}
        self._last_push = self._last_text = 0.0
        self._rate = (time.monotonic(), trainer.step_count)
        self._pending = None
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._build_gui()
        self._thread = threading.Thread(target=self._sender, daemon=True, name="live-viewer-sender")
        self._thread.start()
        self.push()

    def _build_gui(self) -> None:
        gui = self.app.server.gui
        with gui.add_folder("Training", order=-10):
            self._text = gui.add_markdown("starting")
            self._pause = gui.add_button("Pause", hint="training waits here until Resume")
            self._resume = gui.add_button("Resume", visible=False)
        self._pause.on_click(lambda _: self.pause())
        self._resume.on_click(lambda _: self.resume())

    # ---- called by the buttons (and tests) --------------------------------------------------
    def pause(self) -> None:
        self.paused.set()
        self._pause.visible, self._resume.visible = False, True
        self._show("pausing")  # the step in flight finishes first; on_step then says "paused"

    def resume(self) -> None:
        self.paused.clear()
        self._pause.visible, self._resume.visible = True, False
        self._rate = (time.monotonic(), self.trainer.step_count)

    # ---- called by the training loop --------------------------------------------------------
    def on_step(self, stats: dict) -> None:
        self._stats = stats
        now = time.monotonic()
        if now - self._last_text >= 1.0:
            self._last_text = now
            self._show("training")
        if now - self._last_push >= self.options.refresh_seconds:
            self.push()
        if self.paused.is_set():
            self._show("paused")
            self.push()  # show exactly what training stopped at
            self.holding.set()
            while self.paused.is_set() and not self._stop.is_set():
                time.sleep(0.05)  # short sleeps: Ctrl-C still reaches the training thread
            self.holding.clear()

    def push(self) -> None:
        """Hand the current model to the sender thread (a newer one replaces one not yet sent)."""
        self._last_push = time.monotonic()
        snapshot = self.trainer.snapshot()
        with self._wake:
            self._pending = snapshot
            self.pushed += 1
            self._wake.notify()

    def finished(self, result: dict) -> None:
        self.push()
        psnr = result.get("psnr")
        self._text.content = (f"**done** at step {self.trainer.step_count:,}  \n"
                              f"**test PSNR** {psnr:.2f} dB  \n**SSIM** {result.get('ssim', 0):.3f}")
        self._pause.visible = self._resume.visible = False

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify()
        self._thread.join(timeout=30)
        self.app.stop()

    # ---- internals --------------------------------------------------------------------------
    def _show(self, state: str) -> None:
        s, step = self._stats, self.trainer.step_count
        t0, step0 = self._rate
        rate = (step - step0) / max(time.monotonic() - t0, 1e-6)
        lines = [f"**{state}** step {step:,}"]
        if "loss" in s:
            lines.append(f"**loss** {s['loss']:.4f}  \n**PSNR** {s['psnr']:.2f} dB (training view)")
        if "gaussians" in s:
            lines.append(f"**Gaussians** {s['gaussians']:,}")
        if state == "training":
            lines.append(f"**speed** {rate:.1f} steps/s")
        self._text.content = "  \n".join(lines)

    def _sender(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while self._pending is None and not self._stop.is_set():
                    self._wake.wait()
                snapshot, self._pending = self._pending, None
            if snapshot is None:
                continue
            if isinstance(snapshot, SplatModel):
                self.app.world.update_layer(LAYER, snapshot.params)
                self.app.redraw()
            else:
                self.app.set_model(snapshot)
