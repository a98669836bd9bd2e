"""Associations in asyncecto: posts with comments and tags, preloaded and written explicitly.

Run it with ``python examples/blog.py`` (same database rules as the quickstart). Nothing is
ever loaded lazily: associations are preloaded, or joined, when the code asks for them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from asyncecto import Repo, assoc, belongs_to, build_assoc, has_many, many_to_many, migration, schema
from asyncecto.changeset import Changeset, cast, cast_assoc, validate_required
from asyncecto.embedded import database_url
from asyncecto.query import desc, from_, join, limit, order_by, preload, select, where


@schema("blog_authors")
class Author:
    id: int | None = None
    name: str | None = None
    posts: list[Post] = has_many("Post")


@schema("blog_posts")
class Post:
    id: int | None = None
    title: str | None = None
    author_id: int | None = None  # belongs_to adds it anyway; declared here for type checkers
    author: Author | None = belongs_to(Author)
    comments: list[Comment] = has_many("Comment", on_replace="delete", on_delete="delete_all")
    tags: list[Tag] = many_to_many("Tag", join_through="blog_posts_tags", on_delete="delete_all")

    @staticmethod
    def changeset(post: Post, params: dict[str, Any]) -> Changeset[Post]:
        return cast(post, params, ["title"]) | validate_required("title") | cast_assoc("comments")


@schema("blog_comments")
class Comment:
    id: int | None = None
    body: str | None = None
    post_id: int | None = None
    post: Post | None = belongs_to(Post)

    @staticmethod
    def changeset(comment: Comment, params: dict[str, Any]) -> Changeset[Comment]:
        return cast(comment, params, ["body"]) | validate_required("body")


@schema("blog_tags")
class Tag:
    id: int | None = None
    name: str | None = None


MIGRATIONS = Path(__file__).parent / "migrations"  # the tables: examples/migrations/*_create_blog.py


async def main() -> None:
    repo = Repo(database_url("asyncecto_quickstart"), pool_size=3)
    await repo.storage_up()
    async with repo:
        await migration.run(repo, MIGRATIONS, all=True)  # applies what is pending, once
        await repo.query(
            "TRUNCATE blog_posts_tags, blog_tags, blog_comments, blog_posts, blog_authors RESTART IDENTITY"
        )

        # 1. A struct with loaded associations is inserted whole, in one transaction:
        #    the author first, then the post, then its comments and tags (with join rows).
        post = await repo.insert(
            Post(
                title="Hello",
                author=Author(name="Ada"),
                comments=[Comment(body="First!"), Comment(body="Nice post")],
                tags=[Tag(name="intro")],
            )
        )
        print(f"inserted: post {post.id} by author {post.author_id}, comments {[c.id for c in post.comments]}")

        # 2. build_assoc links a new struct to its parent.
        await repo.insert(build_assoc(post, "comments", {"body": "Third"}))

        # 3. Preload: one query per association, siblings in parallel.
        loaded = await repo.all(from_(Post) | preload("author", "tags", {"comments": []}))
        p = loaded[0]
        print(f"preloaded: {p.title!r} by {p.author.name if p.author else None}, tags {[t.name for t in p.tags]}")
        print(f"comments:  {[c.body for c in p.comments]}")

        # 4. A preload query with a limit applies it per parent (a LATERAL join).
        latest = from_(Comment) | order_by(lambda c: desc(c.id)) | limit(2)
        p = (await repo.all(from_(Post) | preload({"comments": latest})))[0]
        print(f"latest 2:  {[c.body for c in p.comments]}")

        # 5. Nested changes through the parent's changeset: the comment left out is deleted.
        keep = p.comments[0]
        params = {"title": "Hello, world", "comments": [{"id": keep.id, "body": "Edited"}, {"body": "New"}]}
        updated = await repo.update(Post.changeset(p, params))
        print(f"updated:   {updated.title!r}, comments {[c.body for c in updated.comments]}")

        # 6. assoc() is a query; joins on associations filter by related rows.
        ada = await repo.get_by_or_raise(Author, name="Ada")
        print(f"assoc:     {[x.title for x in await repo.all(assoc(ada, 'posts'))]}")
        q = from_(Post) | join("inner", lambda p: p.comments, as_="c") | where(lambda *, c: c.body == "New")
        print(f"joined:    {await repo.all(q | select(lambda p, c: (p.title, c.body)))}")

        # 7. Deleting a post deletes its comments and join rows first (on_delete="delete_all").
        await repo.delete(updated)
        print(
            f"left:      {await repo.aggregate(Post, 'count')} posts, {await repo.aggregate(Comment, 'count')} comments"
        )


if __name__ == "__main__":
    asyncio.run(main())
