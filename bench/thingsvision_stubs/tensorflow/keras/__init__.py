from . import applications, layers  # noqa: F401
