"""How the image moves: its parameterisation (pixels or a Fourier spectrum) and the optimisers (Adam, whose state
carries across stages, and L-BFGS-B)."""
