"""The Walk panel: the world's collider (spatial/mesh/collider.py), made in the background from the model shown
at the training cameras, shown on demand, and a walk mode: each browser camera, when it moves, is put where a
walker at eye height gets to on the way (spatial/mesh/walk.py), so it never passes through the collider."""

from __future__ import annotations

import threading

import numpy as np

from spatial.mesh.collider import Collider, ColliderConfig, make_collider
from spatial.mesh.fusion import rendered_views
from spatial.mesh.walk import Walker, eye_height_of

COLLIDER_RGB = (60, 200, 120)


class WalkPanel:
    def __init__(self, app):
        gui = app.server.gui
        self.app = app
        self.collider: Collider | None = None
        self.walker: Walker | None = None
        self.walking = False
        self.positions: dict = {}  # browser id -> where its walker is
        self.config = ColliderConfig()  # what the Make collider button makes
        self._lock = threading.Lock()
        self._making: threading.Thread | None = None
        with gui.add_folder("Walk"):
            self._text = gui.add_markdown("no collider yet")
            gui.add_button("Make collider", hint="a closed collision mesh of the world, from the model shown at "
                                                 "the training cameras (as `spatial export collider`)").on_click(
                lambda _: self.make_in_background())
            self.show = gui.add_checkbox("Show collider", False)
            self.show.on_update(lambda _: self._draw())
            self.walk = gui.add_checkbox("Walk", False, hint="first person at eye height: the collider stops you; "
                                                             "move with the keyboard or the mouse")
            self.walk.on_update(lambda _: self.set_walking(self.walk.value))
            self.eye = gui.add_number("Eye height", 0.0, min=0.0, step=0.01,
                                      hint="scene units above the floor (default: the training cameras' median)")
            self.eye.on_update(lambda _: self.set_eye_height(float(self.eye.value)))
        app.server.on_client_connect(self._follow)

    # ---- the collider ---------------------------------------------------------------------------------------
    def make_in_background(self) -> None:
        if self._making is not None and self._making.is_alive():
            return
        self._text.content = "making the collider..."
        self._making = threading.Thread(target=lambda: self.app.guard(self.make), daemon=True, name="viewer-collider")
        self._making.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until a collider being made in the background is done."""
        if self._making is not None:
            self._making.join(timeout)

    def make(self, config: ColliderConfig | None = None) -> Collider:
        """The collider of the model shown, from the training cameras' renders (`config`: `self.config`)."""
        cameras = self.app.cameras
        if cameras is None:
            self._text.content = "no collider: it is made from the training cameras' views"
            raise ValueError("a collider is made from the training cameras' views; open a training run")
        model = self.app.shown_model()
        views = rendered_views(model.render_frames(cameras))
        splats = model.splat_params()  # their centres measure the world's radius, which bounds the collider
        collider = make_collider(views, cameras, config or self.config, None if splats is None else splats["means"])
        self.set_collider(collider)
        return collider

    def set_collider(self, collider: Collider) -> None:
        self.collider = collider
        self._new_walker(initial=True)
        self._text.content = (f"collider: {len(collider.mesh.faces):,} triangles, voxels of "
                              f"{collider.voxel_size:.3g}; eye height {self.walker.eye_height:.3g}")
        self._draw()

    def set_eye_height(self, height: float) -> None:
        """Walk `height` scene units above the floor (0: the training cameras' median height above theirs)."""
        if self.eye.value != height:
            self.eye.value = height
        self._new_walker()

    def _new_walker(self, initial: bool = False) -> None:
        if self.collider is None:
            return
        up = np.array([0.0, -1.0, 0.0]) if self.app.up is None else np.asarray(self.app.up, float)  # the scene's
        eye = float(self.eye.value)
        if eye <= 0 or initial:
            probe = Walker(self.collider, up, 1.0)
            found = eye_height_of(self.app.cameras.centers.double().numpy(), probe) \
                if self.app.cameras is not None else None
            eye = found or 0.05 * max(self.collider.solid.shape) * self.collider.voxel_size  # a 20th of the world
            self.eye.value = round(eye, 4)
        with self._lock:
            self.walker = Walker(self.collider, up, eye)
            self.positions.clear()

    def _draw(self) -> None:
        scene = self.app.server.scene
        if self.collider is None or not self.show.value:
            scene.remove_by_name("/collider")
            return
        mesh = self.collider.mesh
        scene.add_mesh_simple("/collider", mesh.vertices, mesh.faces.astype(np.uint32), color=COLLIDER_RGB,
                              opacity=0.4, flat_shading=True)

    # ---- walking --------------------------------------------------------------------------------------------
    def set_walking(self, on: bool) -> None:
        if on and self.collider is None:
            self.walk.value = False
            self.make_in_background()
            self.app.notify("making the collider first; turn Walk on when it is done")
            return
        self.walking = on
        with self._lock:
            self.positions.clear()

    def walk_to(self, who, wanted: np.ndarray) -> np.ndarray:
        """Where the walker of browser `who` gets to on its way to `wanted` (placed on the floor below `wanted` the
        first time)."""
        with self._lock:
            walker = self.walker
            if walker is None:
                raise ValueError("no collider yet: make one first")
            here = self.positions.get(who)
            there = walker.place(wanted) if here is None else walker.step(here, wanted)
            self.positions[who] = there
            return there

    def _follow(self, client) -> None:
        @client.camera.on_update
        def _(camera) -> None:
            if not self.walking or self.walker is None:
                return
            wanted = np.asarray(camera.position, float)
            there = self.walk_to(client.client_id, wanted)
            if np.linalg.norm(there - wanted) > 1e-6:  # moved elsewhere than asked: keep the view's direction
                look = np.asarray(camera.look_at, float) + (there - wanted)
                with client.atomic():
                    client.camera.look_at = look
                    client.camera.position = there
