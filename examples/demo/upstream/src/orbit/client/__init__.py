"""Client: the part of orbit that orbit-client ships."""

from orbit.greeting import greet

__all__ = ["greet"]
