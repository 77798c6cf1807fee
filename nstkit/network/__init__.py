"""The network: TensorFlow imported quietly, the device and the precision that pays on it, BatchNorm folded into
the convs, ResNet-50 (or VGG19) truncated to the layers a run reads, and SWAG's smoothing of its activations."""
