"""Posts with comments over HTTP, with FastAPI: ``python -m examples.fastapi_app``."""

from .app import create_app

__all__ = ("create_app",)
