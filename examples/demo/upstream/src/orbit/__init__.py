"""orbit: the demo core package."""

from importlib.metadata import PackageNotFoundError, version

from orbit.greeting import greet


def _installed_version() -> str:
    for dist in ("orbit", "orbit-client"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "0.0.0"


__version__ = _installed_version()
__all__ = ["greet", "__version__"]
