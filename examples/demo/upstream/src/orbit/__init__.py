"""orbit: the demo core package."""

from orbit._build_info import __git_commit__, __version__
from orbit.greeting import greet
from orbit.settings import Settings

__all__ = ["greet", "Settings", "__version__", "__git_commit__"]
