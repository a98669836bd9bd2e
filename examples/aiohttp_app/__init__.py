"""Posts with comments over HTTP, with aiohttp: ``python -m examples.aiohttp_app``."""

from .app import create_app

__all__ = ("create_app",)
