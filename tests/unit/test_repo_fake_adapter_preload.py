"""Preload stitching on the fake adapter: scripted rows given to the right parents, no database."""

from __future__ import annotations

from typing import Any

from asyncecto import Repo
from asyncecto.query import from_, join, limit, preload
from asyncecto.query._plan import Planned
from asyncecto.schema._associations import NotLoaded
from tests.fake_adapter import Call, FakeDatabase
from tests.fake_schemas import Author, Comment, Cover, Post

# rows in each schema's column order: Post (id, title, visits, author_id), Comment (id, text, post_id),
# Author (id, name), Cover (id, url, post_id)


def _keys_filter(call: Call) -> str:
    """The column the preload query filters by its first parameter (the parents' keys)."""
    plan = call.plan
    assert isinstance(plan, Planned) and len(plan.wheres) == 1
    return repr(plan.wheres[0][1])


def _posts(*rows: tuple[Any, ...]) -> list[Post]:
    return [Post(id=r[0], title=r[1], visits=r[2], author_id=r[3]) for r in rows]


async def test_has_many_children_go_to_their_parents_in_row_order(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    posts = _posts((1, "a", 0, None), (2, "b", 0, None), (3, "c", 0, None))
    fake_db.respond("all fk_comments", [(10, "x", 2), (11, "y", 1), (12, "z", 2)])
    loaded = await fake_repo.preload(posts, "comments")
    (call,) = fake_db.statements()
    assert call.kind == "fetch" and call.params == ([1, 2, 3],)  # every parent's key, one parameter
    assert "post_id" in _keys_filter(call)
    assert [[c.id for c in p.comments] for p in loaded] == [[11], [10, 12], []]
    assert all(isinstance(p.comments, NotLoaded) for p in posts)  # the caller's structs are not changed


async def test_belongs_to_parents_are_fetched_once_per_distinct_key(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    posts = _posts((1, "a", 0, 9), (2, "b", 0, None), (3, "c", 0, 9), (4, "d", 0, 7))
    fake_db.respond("all fk_authors", [(7, "bo"), (9, "ann")])
    loaded = await fake_repo.preload(posts, "author")
    (call,) = fake_db.statements()
    assert call.params == ([9, 7],)
    assert [p.author.name if p.author else None for p in loaded] == ["ann", None, "ann", "bo"]


async def test_a_belongs_to_with_no_keys_sends_nothing(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    loaded = await fake_repo.preload(_posts((1, "a", 0, None)), "author")
    assert loaded[0].author is None
    assert fake_db.log == []


async def test_has_one_is_a_struct_or_none(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("all fk_covers", [(5, "u", 2)])
    loaded = await fake_repo.preload(_posts((1, "a", 0, None), (2, "b", 0, None)), "cover")
    assert [p.cover.url if p.cover else None for p in loaded] == [None, "u"]


async def test_nested_preloads_query_level_by_level_with_the_keys_found(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    authors = [Author(id=1, name="ann"), Author(id=2, name="bo")]
    fake_db.respond("all fk_posts", [(10, "p", 0, 2), (11, "q", 0, 1), (12, "r", 0, 2)])
    fake_db.respond("all fk_comments", [(100, "c", 12), (101, "d", 10)])
    loaded = await fake_repo.preload(authors, {"posts": "comments"})
    assert [(c.sql.split(" #")[0], c.params) for c in fake_db.statements()] == [
        ("all fk_posts", ([1, 2],)),
        ("all fk_comments", ([11, 10, 12],)),  # the keys in the order the posts were stitched
    ]
    assert [[(p.id, [c.id for c in p.comments]) for p in a.posts] for a in loaded] == [
        [(11, [])],
        [(10, [101]), (12, [100])],
    ]


async def test_loaded_associations_are_kept_unless_forced(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("all fk_comments", [(10, "x", 1)], [(11, "new", 1)])
    (post,) = await fake_repo.preload(_posts((1, "a", 0, None)), "comments")
    assert await fake_repo.preload(post, "comments") is post
    assert len(fake_db.statements()) == 1
    forced = await fake_repo.preload(post, "comments", force=True)
    assert [c.text for c in forced.comments] == ["new"]


async def test_sibling_preloads_inside_a_transaction_share_its_connection(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("all fk_comments", [(10, "x", 1)])
    fake_db.respond("all fk_authors", [(9, "ann")])
    async with fake_repo.transaction():
        (post,) = await fake_repo.preload(_posts((1, "a", 0, 9)), ["comments", "author"])
    assert sorted(c.sql.split(" #")[0] for c in fake_db.statements()[1:-1]) == ["all fk_authors", "all fk_comments"]
    assert [c.kind for c in fake_db.log].count("checkout") == 1
    assert post.author is not None
    assert (len(post.comments), post.author.name) == (1, "ann")


async def test_preloads_written_on_the_query_run_after_it(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("all fk_posts", [(1, "a", 0, None), (2, "b", 0, None)])
    fake_db.respond("all fk_comments", [(10, "x", 2)])
    posts = await fake_repo.all(from_(Post) | preload("comments"))
    assert [c.params for c in fake_db.statements()] == [(), ([1, 2],)]
    assert [[c.id for c in p.comments] for p in posts] == [[], [10]]


async def test_a_join_preload_is_stitched_from_one_query(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    # the query selects (post, comment) per row: a post with two comments comes twice, one without once
    fake_db.respond(
        "all fk_posts", [(1, "a", 0, None, 10, "x", 1), (1, "a", 0, None, 11, "y", 1), (2, "b", 0, None) + (None,) * 3]
    )
    q = from_(Post) | join("left", lambda p: p.comments, as_="c") | preload(lambda p, *, c: {"comments": c})
    posts = await fake_repo.all(q)
    assert len(fake_db.statements()) == 1
    assert [(p.id, [c.id for c in p.comments]) for p in posts] == [(1, [10, 11]), (2, [])]


async def test_a_per_parent_limit_asks_for_the_per_parent_form(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("per key", [(10, "x", 1), (12, "z", 2)])
    loaded = await fake_repo.preload(
        _posts((1, "a", 0, None), (2, "b", 0, None)), {"comments": from_(Comment) | limit(1)}
    )
    (call,) = fake_db.statements()
    assert call.sql.startswith("per key of $")
    assert call.params[-1] == [1, 2]
    assert [[c.id for c in p.comments] for p in loaded] == [[10], [12]]


async def test_a_preload_of_covers_and_comments_gives_each_its_own_rows(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("all fk_comments", [(10, "x", 1)])
    fake_db.respond("all fk_covers", [(5, "u", 1)])
    (post,) = await fake_repo.preload(_posts((1, "a", 0, None)), ["comments", "cover"])
    assert isinstance(post.cover, Cover) and [type(c) for c in post.comments] == [Comment]
