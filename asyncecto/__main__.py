"""``python -m asyncecto``: the ``asyncecto`` command."""

from __future__ import annotations

from asyncecto.cli import main

raise SystemExit(main())
