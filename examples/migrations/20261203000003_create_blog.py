"""The blog example's tables: authors, posts, comments, and tags through a join table."""

from asyncecto.migration import add, create_if_not_exists, references, table, unique_index


def change() -> None:
    with create_if_not_exists(table("blog_authors")):
        add("name", "text")
    with create_if_not_exists(table("blog_posts")):
        add("title", "text")
        add("author_id", references("blog_authors"))
    with create_if_not_exists(table("blog_comments")):
        add("body", "text")
        add("post_id", references("blog_posts"))
    with create_if_not_exists(table("blog_tags")):
        add("name", "text")
    create_if_not_exists(unique_index("blog_tags", ["name"]))
    with create_if_not_exists(table("blog_posts_tags", primary_key=False)):
        add("post_id", references("blog_posts"))
        add("tag_id", references("blog_tags"))
