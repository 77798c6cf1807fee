"""The entry points: `stylize`, `stylize_batch`, `stylize_tiled` and `stylize_video`, and the progress bar
they show. Each loads and checks its inputs, plans the run's stages and hands them to `run.loop.run_stages`."""
