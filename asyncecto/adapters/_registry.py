"""Which adapter serves a URL scheme (as Ecto's ``adapter:`` option, read from the URL).

The built-in adapters are imported when first used; another one is added with
:func:`register_adapter`::

    register_adapter("fake", FakeAdapter)  # Repo("fake://localhost/db") now builds FakeAdapter(settings)
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from asyncecto.errors import ArgumentError

from ._settings import ConnectionSettings

if TYPE_CHECKING:
    from . import RepoAdapter

__all__ = (
    "AdapterFactory",
    "adapter_factory",
    "known_schemes",
    "open_adapter",
    "register_adapter",
    "unregister_adapter",
)

#: builds an adapter from its settings (an adapter class is one)
AdapterFactory = Callable[[ConnectionSettings], "RepoAdapter"]

#: scheme -> "module:attribute" of the built-in adapters, imported on first use
_BUILTIN: Final = {
    "postgres": "asyncecto.adapters.postgres:PostgresAdapter",
    "postgresql": "asyncecto.adapters.postgres:PostgresAdapter",
    "ecto": "asyncecto.adapters.postgres:PostgresAdapter",
}
_SCHEME_RE: Final = re.compile(r"[a-z][a-z0-9+.-]*")
_registered: dict[str, AdapterFactory] = {}


def known_schemes() -> tuple[str, ...]:
    """The URL schemes an adapter is known for: the built-in ones, then the registered ones."""
    return (*_BUILTIN, *_registered)


def register_adapter(scheme: str, factory: AdapterFactory) -> None:
    """Serve URLs with ``scheme`` (matched without regard to case) by ``factory(settings)``.

    :raises ArgumentError: the scheme is malformed, built in, or registered to another factory
    """
    if not isinstance(scheme, str) or not _SCHEME_RE.fullmatch(scheme.lower()):
        raise ArgumentError(f"cannot register adapter: {scheme!r} is not a URL scheme (a letter, then a-z 0-9 + . -)")
    scheme = scheme.lower()
    if not callable(factory):
        raise ArgumentError(
            f"cannot register adapter for {scheme!r}: expected an adapter class or factory, got {factory!r}"
        )
    taken = scheme in _BUILTIN or _registered.get(scheme, factory) is not factory
    if taken:
        raise ArgumentError(
            f"cannot register adapter for {scheme!r}: the scheme already has an adapter\n\n"
            "fix: pick another scheme, or unregister_adapter() the registered one first"
        )
    _registered[scheme] = factory


def unregister_adapter(scheme: str) -> None:
    """Forget the adapter registered for ``scheme`` (the built-in ones stay)."""
    _registered.pop(scheme.lower(), None)


def adapter_factory(scheme: str) -> AdapterFactory:
    """The factory of ``scheme``'s adapter.

    :raises ArgumentError: no adapter serves ``scheme``; the message names the known schemes
    """
    key = scheme.lower()
    found = _registered.get(key)
    if found is not None:
        return found
    target = _BUILTIN.get(key)
    if target is None:
        known = ", ".join(f"{s}://" for s in known_schemes())
        raise ArgumentError(
            f"no adapter for URL scheme {scheme!r}; the known schemes are {known}\n\n"
            "fix: use one of them, or register an adapter with asyncecto.adapters.register_adapter()"
        )
    module, _, name = target.partition(":")
    factory: AdapterFactory = getattr(importlib.import_module(module), name)
    return factory


def open_adapter(settings: ConnectionSettings) -> RepoAdapter:
    """A new adapter for ``settings`` (chosen by ``settings.scheme``)."""
    return adapter_factory(settings.scheme)(settings)
