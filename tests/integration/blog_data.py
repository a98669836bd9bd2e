"""A known blog in the bl_* tables for the association tests, and schemas over the same tables
with the options tests/assoc_schemas.py does not declare (has_one/many_to_many through,
where= variants, join_keys, preload_order on a many_to_many).

The data (ids are given, so they are the same in the sandbox, where sequences are not rolled back)::

    users      1 ann (profile 1), 2 bob (profile 2), 3 cid (no profile, no posts)
    posts      1 p1 by ann, 2 p2 by bob, 3 p3 by nobody (no comments/permalink/tags), 4 p4 by ann
    comments   1 c1 p1 bob  approved     2 c2 p1 cid  -            3 c3 p1 bob  approved
               4 c4 p2 ann  -            5 c5 p2 none approved     6 c6 no post, by ann
               7 c7 p4 bob  -
    permalinks 1 /p1 → p1, 2 /p2 → p2
    tags       1 python, 2 elixir, 3 sql (unused); links p1-python, p1-elixir, p2-python
"""

from __future__ import annotations

from typing import Any

from asyncecto import Repo, belongs_to, has_many, has_one, many_to_many, schema

from ..assoc_schemas import Permalink, Tag

BLOG_SQL = (
    "INSERT INTO bl_users (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')",
    "INSERT INTO bl_profiles (id, bio, user_id) VALUES (1, 'ann bio', 1), (2, 'bob bio', 2)",
    "INSERT INTO bl_posts (id, title, visits, author_id) VALUES (1, 'p1', 10, 1), (2, 'p2', 20, 2), "
    "(3, 'p3', 30, NULL), (4, 'p4', 40, 1)",
    "INSERT INTO bl_comments (id, text, approved, post_id, author_id) VALUES "
    "(1, 'c1', true, 1, 2), (2, 'c2', false, 1, 3), (3, 'c3', true, 1, 2), (4, 'c4', false, 2, 1), "
    "(5, 'c5', true, 2, NULL), (6, 'c6', false, NULL, 1), (7, 'c7', false, 4, 2)",
    "INSERT INTO bl_permalinks (id, url, post_id) VALUES (1, '/p1', 1), (2, '/p2', 2)",
    "INSERT INTO bl_tags (id, name) VALUES (1, 'python'), (2, 'elixir'), (3, 'sql')",
    "INSERT INTO bl_posts_tags (post_id, tag_id) VALUES (1, 1), (1, 2), (2, 1)",
    # the ids above were given, not drawn: move each sequence past them for the rows tests insert
    *(
        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
        for t in ("bl_users", "bl_profiles", "bl_posts", "bl_comments", "bl_permalinks", "bl_tags")
    ),
)

ARCHIVE_SQL = (
    "INSERT INTO archive.bl_users (id, name) VALUES (1, 'old ann'), (2, 'old bob')",
    "INSERT INTO archive.bl_posts (id, title, author_id) VALUES (1, 'old p1', 2), (7, 'old p7', 1)",
    "INSERT INTO archive.bl_comments (id, text, post_id, author_id) VALUES "
    "(1, 'old c1', 1, 1), (2, 'old c2', 7, 2), (3, 'old c3', 7, 1)",
)


async def seed_blog(repo: Repo, *, archive: bool = False) -> None:
    for statement in BLOG_SQL:
        await repo.query(statement)
    if archive:
        for statement in ARCHIVE_SQL:
            await repo.query(statement)


def texts(structs: Any) -> list[str]:
    """Comment texts, sorted (the order of unordered preloads is the database's)."""
    return sorted(c.text for c in structs)


def names(structs: Any) -> list[str]:
    return sorted(s.name for s in structs)


def titles(structs: Any) -> list[str]:
    return sorted(s.title for s in structs)


@schema("bl_users")
class XUser:
    id: int | None = None
    name: str | None = None
    posts: list[XPost] = has_many("XPost", foreign_key="author_id")
    comments: list[XComment] = has_many("XComment", foreign_key="author_id")
    profile: XProfile | None = has_one("XProfile", foreign_key="user_id")
    tags: list[Tag] = has_many(through=["posts", "tags"])  # through a many_to_many
    permalinks: list[Permalink] = has_many(through=["posts", "permalink"])  # through a has_one
    post_commenters: list[XUser] = has_many(through=["posts", "commenters"])  # through a through
    approved_post_comments: list[XComment] = has_many(through=["posts", "approved_comments"])


@schema("bl_profiles")
class XProfile:
    id: int | None = None
    bio: str | None = None
    user: XUser | None = belongs_to(XUser)
    user_posts: list[XPost] = has_many(through=["user", "posts"])  # through a belongs_to


@schema("bl_posts")
class XPost:
    id: int | None = None
    title: str | None = None
    visits: int | None = None
    author: XUser | None = belongs_to(XUser)
    comments: list[XComment] = has_many("XComment", foreign_key="post_id")
    approved_comments: list[XComment] = has_many("XComment", foreign_key="post_id", where={"approved": True})
    anonymous_comments: list[XComment] = has_many("XComment", foreign_key="post_id", where={"author_id": None})
    signed_comments: list[XComment] = has_many("XComment", foreign_key="post_id", where={"author_id": ("not", None)})
    picked_comments: list[XComment] = has_many("XComment", foreign_key="post_id", where={"text": ("in", ["c1", "c4"])})
    odd_comments: list[XComment] = has_many(
        "XComment", foreign_key="post_id", where={"id": ("fragment", "? % 2 = 1")}, preload_order=["id"]
    )
    permalink: Permalink | None = has_one(Permalink, foreign_key="post_id")
    tags: list[Tag] = many_to_many(
        Tag, join_through="bl_posts_tags", join_keys=[("post_id", "id"), ("tag_id", "id")], preload_order=["name"]
    )
    python_tags: list[Tag] = many_to_many(
        Tag, join_through="bl_posts_tags", join_keys=[("post_id", "id"), ("tag_id", "id")], where={"name": "python"}
    )
    first_tag_links: list[Tag] = many_to_many(
        Tag, join_through="bl_posts_tags", join_keys=[("post_id", "id"), ("tag_id", "id")], join_where={"tag_id": 1}
    )
    commenters: list[XUser] = has_many(through=["comments", "author"])  # through a belongs_to
    approved_commenters: list[XUser] = has_many(through=["approved_comments", "author"])


@schema("bl_comments")
class XComment:
    id: int | None = None
    text: str | None = None
    approved: bool | None = False
    post: XPost | None = belongs_to(XPost)
    author: XUser | None = belongs_to(XUser)
    post_permalink: Permalink | None = has_one(through=["post", "permalink"])  # has_one through
    post_author: XUser | None = has_one(through=["post", "author"])
