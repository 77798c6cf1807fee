"""A run: gradient sources (the whole image or tiles), checkpoints, the loop over a schedule of stages, and the
entry points `stylize`, `stylize_batch`, `stylize_tiled` and `stylize_video`."""
