"""The browser viewer for `spatial`: a viser app over an editable world of splat layers.

`viewer` imports `spatial`; `spatial` never imports `viewer` (the `spatial view` command is
registered as a plugin through the `spatial.commands` entry point).
"""
