"""Schemas for the fake-adapter tests (no tables anywhere: the fake adapter answers).

The foreign keys are declared (for the type checker) where ``belongs_to`` would add them.
"""

from __future__ import annotations

from asyncecto import belongs_to, field, has_many, has_one, schema


@schema("fk_authors")
class Author:
    id: int | None = None
    name: str | None = None
    posts: list[Post] = has_many("Post")


@schema("fk_posts")
class Post:
    id: int | None = None
    title: str | None = None
    visits: int | None = 0
    author_id: int | None = None
    author: Author | None = belongs_to(Author)
    comments: list[Comment] = has_many("Comment")
    cover: Cover | None = has_one("Cover")


@schema("fk_comments")
class Comment:
    id: int | None = None
    text: str | None = None
    post_id: int | None = None
    post: Post | None = belongs_to(Post)


@schema("fk_covers")
class Cover:
    id: int | None = None
    url: str | None = None
    post_id: int | None = None
    post: Post | None = belongs_to(Post)


@schema("fk_tags", primary_key=False)
class Tag:
    name: str | None = field(primary_key=True)
    uses: int | None = None
