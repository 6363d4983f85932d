"""Settings, validated by pydantic (whose core is a compiled extension)."""

from pydantic import BaseModel


class Settings(BaseModel):
    greeting: str = "Hello"
    punctuation: str = ""
