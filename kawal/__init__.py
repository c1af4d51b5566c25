"""Kawal: real-time custody watch for sealed logistics crates."""

__version__ = "0.1.0"
