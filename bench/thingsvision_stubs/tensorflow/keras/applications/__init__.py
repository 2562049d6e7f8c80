"""Stand-in: Keras models are not available in the bench (THINGSvision's PyTorch path only)."""
