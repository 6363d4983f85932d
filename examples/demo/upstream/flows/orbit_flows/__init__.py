"""Flows of the orbit demo."""
