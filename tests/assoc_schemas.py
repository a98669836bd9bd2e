"""Schemas with associations (a small blog) and their tables, shared by the association tests.

Tests that need other options (another ``on_replace``, say) declare their own schema
classes over the same tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncecto import belongs_to, has_many, has_one, many_to_many, schema


@schema("bl_users")
class User:
    id: int | None = None
    name: str | None = None
    posts: list[Post] = has_many("Post", foreign_key="author_id", on_delete="nilify_all")
    comments: list[Comment] = has_many("Comment", foreign_key="author_id", on_delete="delete_all")
    profile: Profile | None = has_one("Profile", on_replace="delete", on_delete="delete_all")
    post_comments: list[Comment] = has_many(through=["posts", "comments"])


@schema("bl_profiles")
class Profile:
    id: int | None = None
    bio: str | None = None
    user: User | None = belongs_to(User)
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        user_id: int | None = None


@schema("bl_posts")
class Post:
    id: int | None = None
    title: str | None = None
    visits: int | None = None
    author: User | None = belongs_to(User)
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        author_id: int | None = None
    comments: list[Comment] = has_many("Comment", on_replace="delete", on_delete="delete_all")
    ordered_comments: list[Comment] = has_many("Comment", preload_order=[("desc", "id")])
    approved_comments: list[Comment] = has_many("Comment", where={"approved": True})
    permalink: Permalink | None = has_one("Permalink", on_replace="delete", on_delete="delete_all")
    tags: list[Tag] = many_to_many("Tag", join_through="bl_posts_tags", on_replace="delete", on_delete="delete_all")
    commenters: list[User] = has_many(through=["comments", "author"])


@schema("bl_comments")
class Comment:
    id: int | None = None
    text: str | None = None
    approved: bool | None = False
    post: Post | None = belongs_to(Post)
    author: User | None = belongs_to(User)
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        post_id: int | None = None
        author_id: int | None = None


@schema("bl_permalinks")
class Permalink:
    id: int | None = None
    url: str | None = None
    post: Post | None = belongs_to(Post)
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        post_id: int | None = None


@schema("bl_posts_tags")
class PostTagLink:
    """The join table as a schema (``join_through=PostTagLink``)."""

    id: int | None = None
    post_id: int | None = None
    tag_id: int | None = None


@schema("bl_tags")
class Tag:
    id: int | None = None
    name: str | None = None
    posts: list[Post] = many_to_many(Post, join_through=PostTagLink)


ASSOC_TABLES = (
    "bl_users",
    "bl_profiles",
    "bl_posts",
    "bl_comments",
    "bl_permalinks",
    "bl_tags",
    "bl_posts_tags",
    "archive.bl_users",
    "archive.bl_posts",
    "archive.bl_comments",
    "archive.bl_profiles",
    "archive.bl_permalinks",
    "archive.bl_tags",
    "archive.bl_posts_tags",
)

ASSOC_DDL = (
    "DROP TABLE IF EXISTS bl_posts_tags, bl_tags, bl_permalinks, bl_comments, bl_posts, bl_profiles, bl_users, "
    "archive.bl_users, archive.bl_posts, archive.bl_comments, archive.bl_profiles, archive.bl_permalinks, "
    "archive.bl_tags, archive.bl_posts_tags CASCADE",
    "CREATE TABLE bl_users (id bigserial PRIMARY KEY, name text)",
    "CREATE TABLE bl_profiles (id bigserial PRIMARY KEY, bio text, user_id bigint REFERENCES bl_users(id))",
    "CREATE TABLE bl_posts (id bigserial PRIMARY KEY, title text, visits integer, "
    "author_id bigint REFERENCES bl_users(id))",
    "CREATE TABLE bl_comments (id bigserial PRIMARY KEY, text text, approved boolean, "
    "post_id bigint REFERENCES bl_posts(id), author_id bigint REFERENCES bl_users(id))",
    "CREATE TABLE bl_permalinks (id bigserial PRIMARY KEY, url text, post_id bigint REFERENCES bl_posts(id))",
    "CREATE TABLE bl_tags (id bigserial PRIMARY KEY, name text UNIQUE)",
    "CREATE TABLE bl_posts_tags (id bigserial PRIMARY KEY, post_id bigint NOT NULL REFERENCES bl_posts(id), "
    "tag_id bigint NOT NULL REFERENCES bl_tags(id), UNIQUE (post_id, tag_id))",
    "CREATE TABLE archive.bl_users (LIKE bl_users INCLUDING ALL)",
    "CREATE TABLE archive.bl_posts (LIKE bl_posts INCLUDING ALL)",
    "CREATE TABLE archive.bl_comments (LIKE bl_comments INCLUDING ALL)",
    "CREATE TABLE archive.bl_profiles (LIKE bl_profiles INCLUDING ALL)",
    "CREATE TABLE archive.bl_permalinks (LIKE bl_permalinks INCLUDING ALL)",
    "CREATE TABLE archive.bl_tags (LIKE bl_tags INCLUDING ALL)",
    "CREATE TABLE archive.bl_posts_tags (LIKE bl_posts_tags INCLUDING ALL)",
)
