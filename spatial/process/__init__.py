"""Capture to scene: photos (and videos) to calibrated cameras and sparse points, through pycolmap."""
