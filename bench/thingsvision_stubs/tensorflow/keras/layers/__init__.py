"""Stand-in for tensorflow.keras.layers: the one name THINGSvision imports."""


class Lambda:
    """Never instantiated on THINGSvision's PyTorch path."""
