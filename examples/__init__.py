"""asyncecto's examples. Scripts run as files (``python examples/quickstart.py``); the web apps
as modules (``python -m examples.fastapi_app``, ``python -m examples.aiohttp_app``)."""
