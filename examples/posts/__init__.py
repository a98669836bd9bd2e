"""Posts with comments: the schemas, changesets and queries behind the two web examples.

``examples/fastapi_app`` and ``examples/aiohttp_app`` are thin HTTP layers over these
functions; the tables come from ``examples/posts/migrations/``. The functions raise what the
integrations turn into HTTP answers: ``NoResultsError`` (404) and ``InvalidChangesetError``
(422 with the changeset's errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asyncecto import Repo, belongs_to, build_assoc, has_many, migration, schema
from asyncecto.changeset import Changeset, cast, validate_change, validate_length, validate_required
from asyncecto.embedded import database_url
from asyncecto.errors import NoResultsError
from asyncecto.query import from_, order_by, preload

__all__ = (
    "MAX_ID",
    "MIGRATIONS",
    "Comment",
    "Post",
    "add_comment",
    "comment_changeset",
    "comment_json",
    "create_post",
    "delete_post",
    "get_post",
    "list_posts",
    "migrate",
    "new_repo",
    "post_changeset",
    "post_json",
    "storable_text",
    "update_post",
)

MIGRATIONS = Path(__file__).parent / "migrations"


@schema("web_posts")
class Post:
    id: int | None = None
    title: str | None = None
    body: str | None = None
    comments: list[Comment] = has_many("Comment", preload_order=["id"], on_delete="delete_all")


@schema("web_comments")
class Comment:
    id: int | None = None
    body: str | None = None
    post_id: int | None = None
    post: Post | None = belongs_to(Post)


#: the largest id a bigserial column holds
MAX_ID = 2**63 - 1


def storable_text(field: str, value: Any) -> list[tuple[str, str]]:
    """PostgreSQL text holds neither NUL characters nor lone surrogates: refuse them as data errors."""
    if not isinstance(value, str):
        return []
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return [(field, "is invalid")]
    return [(field, "is invalid")] if "\x00" in value else []


def post_changeset(post: Post, params: dict[str, Any]) -> Changeset[Post]:
    return (
        cast(post, params, ["title", "body"])
        | validate_required(["title", "body"])
        | validate_length("title", min=3, max=120)
        | validate_change("title", storable_text)
        | validate_change("body", storable_text)
    )


def comment_changeset(comment: Comment, params: dict[str, Any]) -> Changeset[Comment]:
    return (
        cast(comment, params, ["body"])
        | validate_required("body")
        | validate_length("body", max=2000)
        | validate_change("body", storable_text)
    )


def new_repo(url: str | None = None) -> Repo:
    """The app's Repo: ``url``, else ``$DATABASE_URL``, else a local or embedded server (as the quickstart)."""
    return Repo(url or database_url("asyncecto_quickstart"), pool_size=5)


async def migrate(repo: Repo) -> list[int]:
    """Create the tables (the repo must be running); the versions applied."""
    return await migration.run(repo, MIGRATIONS, all=True, log=False)


async def list_posts(repo: Repo) -> list[Post]:
    return await repo.all(from_(Post) | order_by("id") | preload("comments"))


async def _post_or_raise(repo: Repo, post_id: int) -> Post:
    if not 1 <= post_id <= MAX_ID:  # no such row can exist (and the driver would refuse the value)
        raise NoResultsError(f"Post with primary key {post_id!r}")
    return await repo.get_or_raise(Post, post_id)


async def get_post(repo: Repo, post_id: int) -> Post:
    """The post with its comments; ``NoResultsError`` when there is none."""
    return await repo.preload(await _post_or_raise(repo, post_id), "comments")


async def create_post(repo: Repo, params: dict[str, Any]) -> Post:
    return await repo.insert(post_changeset(Post(comments=[]), params))


async def update_post(repo: Repo, post_id: int, params: dict[str, Any]) -> Post:
    post = await get_post(repo, post_id)
    return await repo.update(post_changeset(post, params))


async def delete_post(repo: Repo, post_id: int) -> None:
    await repo.delete(await _post_or_raise(repo, post_id))  # its comments go too (on_delete)


async def add_comment(repo: Repo, post_id: int, params: dict[str, Any]) -> Comment:
    post = await _post_or_raise(repo, post_id)
    comment: Comment = build_assoc(post, "comments")
    return await repo.insert(comment_changeset(comment, params))


def comment_json(comment: Comment) -> dict[str, Any]:
    return {"id": comment.id, "post_id": comment.post_id, "body": comment.body}


def post_json(post: Post) -> dict[str, Any]:
    """The post as JSON data, with its comments (which must be loaded)."""
    return {"id": post.id, "title": post.title, "body": post.body, "comments": [comment_json(c) for c in post.comments]}
