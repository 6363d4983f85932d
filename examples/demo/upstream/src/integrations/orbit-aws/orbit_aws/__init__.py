"""orbit integration for aws."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("orbit-aws")
except PackageNotFoundError:
    __version__ = "0.0.0"


def describe() -> str:
    return "orbit-aws " + __version__
