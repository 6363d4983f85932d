"""orbit integration for gcp."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orbit-gcp")
except PackageNotFoundError:
    __version__ = "0.0.0"


def describe() -> str:
    return "orbit-gcp " + __version__
