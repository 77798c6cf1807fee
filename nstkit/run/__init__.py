"""A run: its schedule of stages and members, the state it carries (image, Adam, best image), gradient sources
(the whole image or tiles), checkpoints, Ctrl-C handling, the loop over the stages and the `Result` it gives.
The entry points that build runs are in `api`."""
