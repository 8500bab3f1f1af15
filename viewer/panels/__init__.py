"""The viewer's GUI panels, one file each, over the app's `World` (see viewer/app.py for what they share):

    select.py       box/sphere gizmo and threshold selections
    edit.py         delete, keep, crop, tint, undo/redo
    layers.py       move a layer, merge, save the world or a splat file
    camera_path.py  keyframes, preview, save the path, render a video

A panel is a class built with the app once its server runs; every button calls a `World` method
through `app.edit`, so what a button does is tested without a browser (tests/test_viewer_world.py).
"""
