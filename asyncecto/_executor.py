"""What a layer that takes a Repo but must not import it (the migrator, imported with the migration
DSL) reaches through it: the ``DEFAULT`` sentinel of the Repo's options, and the executor behind a
``Repo`` (:class:`asyncecto.repo._core.RepoCore`, which derives from :class:`Executor`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from asyncecto.errors import ArgumentError

if TYPE_CHECKING:
    from asyncecto.repo._core import RepoCore

__all__ = ("DEFAULT", "Executor", "executor_of")


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: "use the repo's configured value" for options such as ``timeout``
DEFAULT: Any = _Default()


class Executor:
    """The base of the Repo's executor: what :func:`executor_of` recognises without importing the Repo."""

    __slots__ = ()


def executor_of(repo: Any) -> RepoCore:
    """The executor behind a public ``Repo`` (asyncecto's own modules and its tests reach it so).

    :raises ArgumentError: ``repo`` is not a Repo
    """
    core = getattr(repo, "_executor", None)
    if not isinstance(core, Executor):
        raise ArgumentError(f"expected a Repo, got {repo!r}")
    return cast("RepoCore", core)
