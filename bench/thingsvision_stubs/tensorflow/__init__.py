"""Stand-in for tensorflow: THINGSvision imports it at module level; its PyTorch path never uses it."""
from types import SimpleNamespace

from . import keras  # noqa: F401

config = SimpleNamespace(
    list_physical_devices=lambda kind=None: [],
    list_logical_devices=lambda kind=None: [],
    experimental=SimpleNamespace(set_memory_growth=lambda *args: None),
)
