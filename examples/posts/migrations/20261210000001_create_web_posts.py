"""The web examples' tables: posts and their comments (deleted with the post)."""

from asyncecto.migration import add, create_if_not_exists, index, references, table


def change() -> None:
    with create_if_not_exists(table("web_posts")):
        add("title", "string", null=False)
        add("body", "text", null=False)
    with create_if_not_exists(table("web_comments")):
        add("body", "text", null=False)
        add("post_id", references("web_posts", on_delete="delete_all"), null=False)
    create_if_not_exists(index("web_comments", ["post_id"]))
