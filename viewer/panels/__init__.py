"""The viewer's GUI panels, one file each, over the app's `World` (see viewer/app.py for what they share):

    select.py       box/sphere gizmo and threshold selections; the selection mode
    tools.py        what the mouse does: rectangle select, pick, similar colour, focus, measure, set up
    edit.py         delete, keep, crop, tint, undo/redo, history
    colour.py       colour grades of the selection or a layer, previewed
    layers.py       show/hide, lock, rename, duplicate, split, delete, move, merge, save
    camera_path.py  keyframes, preview, save the path, render a video

A panel is a class built with the app once its server runs; every button calls a `World` method
through `app.edit`, so what a button does is tested without a browser (tests/test_viewer_world.py,
tests/test_viewer_editing.py). A panel that shows the world's state adds a callback to `app.on_change`.
"""
