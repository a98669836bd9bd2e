"""The changeset errors example's table."""

from asyncecto.migration import add, create_if_not_exists, table, unique_index


def change() -> None:
    with create_if_not_exists(table("example_users")):
        add("email", "string")
        add("name", "string")
        add("age", "integer")
    create_if_not_exists(unique_index("example_users", ["email"]))
