from collections.abc import Callable
from typing import Any

def load_rows(
    cls: type,
    rows: list[Any],
    slots: tuple[Any, ...],
    loaders: tuple[Callable[[Any], Any] | None, ...],
    consts: tuple[tuple[Any, Any, bool], ...],
    meta_slot: Any,
    meta: Any,
    /,
) -> list[Any]: ...
