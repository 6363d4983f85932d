"""Greetings, the core feature of orbit."""


def greet(name: str) -> str:
    return f"Hello, {name}"
