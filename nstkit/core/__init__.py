"""What a run is, before any pixel or tensor: errors, config fields, the layer catalog and presets, `StyleConfig`,
the run record, and safe file writes. No TensorFlow, no image decoding: the command line answers from here in
milliseconds."""
