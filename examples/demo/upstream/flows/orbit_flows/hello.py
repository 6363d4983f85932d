"""A plain synchronous flow."""

import os

from prefect import flow


@flow
def hello(name: str = "world") -> str:
    """Say hello and tell which deployment ran it."""
    message = f"Hello, {name} from {os.environ.get('DEPLOYMENT_NAME', 'no deployment')}"
    print(message)
    return message
