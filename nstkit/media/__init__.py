"""Pictures in and out, without TensorFlow: images (load, save, caffe-BGR pixels), start images, colour control,
masks, tile geometry, optical flow between frames, and clips. `images.sample` names the bundled sample images."""
