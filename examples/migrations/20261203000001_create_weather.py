"""The quickstart's table."""

from asyncecto.migration import add, create_if_not_exists, table


def change() -> None:
    with create_if_not_exists(table("weather")):
        add("city", "string")
        add("temp_lo", "integer")
        add("temp_hi", "integer")
        add("prcp", "float")
