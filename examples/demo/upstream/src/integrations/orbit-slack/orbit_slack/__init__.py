"""orbit integration for slack."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orbit-slack")
except PackageNotFoundError:
    __version__ = "0.0.0"


def describe() -> str:
    return "orbit-slack " + __version__
