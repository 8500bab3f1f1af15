"""Named presets for `spatial` commands. Each module holds the presets of one config type."""
