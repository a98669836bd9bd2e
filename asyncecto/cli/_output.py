"""What the ``asyncecto`` command prints: messages, log lines, the migration status table, prompts."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ("LogFormatter", "confirm", "display_path", "error", "info", "setup_logging", "status_table")


def info(message: str) -> None:
    """A line on stdout."""
    print(message, flush=True)


def error(message: str) -> None:
    """A message on stderr."""
    print(message, file=sys.stderr, flush=True)


def display_path(path: Path) -> str:
    """``path`` relative to the cwd when it is inside it, else absolute."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except ValueError:  # another drive (Windows)
        return str(path)


class LogFormatter(logging.Formatter):
    """Ecto's console format: ``12:00:01.042 [info] == Migrated 20240101000000 in 0.0s``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d [%(levelname)s] %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def setup_logging(level: str) -> None:
    """Show asyncecto's log records (the migrator's per-migration lines among them) on stdout at ``level``."""
    logger = logging.getLogger("asyncecto")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LogFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def status_table(label: str, rows: Iterable[tuple[str, int, str]]) -> str:
    """The ``migrations`` report in Ecto's layout.

    >>> print(status_table("app.repo:repo", [("up", 20240101000000, "create_posts"), ("down", 20240102000000, "x")]))
    <BLANKLINE>
    Repo: app.repo:repo
    <BLANKLINE>
      Status    Migration ID    Migration Name
    --------------------------------------------------
      up        20240101000000  create_posts
      down      20240102000000  x
    <BLANKLINE>
    """
    head = f"\nRepo: {label}\n\n  Status    Migration ID    Migration Name\n{'-' * 50}\n"
    body = "\n".join(f"  {status:<10}{version!s:<16}{name}" for status, version, name in rows)
    return head + body + "\n"


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal (Ecto's ``[Yn]``: an empty answer is yes)."""
    answer = input(f"{question} [Yn] ").strip().lower()
    return answer in ("", "y", "yes")
