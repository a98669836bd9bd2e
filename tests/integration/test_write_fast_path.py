"""Issue 21, insert one / update one: a plain single-row write is one statement whose SQL text is
built once per shape (the same string each time), so the driver prepares it once per connection;
what the write path now works out once per schema still gives every write its full behaviour."""

from __future__ import annotations

import gc

import pytest

from asyncecto import Repo, meta
from asyncecto.changeset import change

from ..schemas import Post, User, Weather

pytestmark = pytest.mark.usefixtures("repo")


class Sent:
    """The SQL strings a repo sends, as telemetry saw them (the very objects)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        repo.telemetry.attach(lambda e: self.sql.append(e.sql), name="write-fast-path")

    async def statements(self) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql


async def _prepared(repo: Repo, like: str) -> list[str]:
    gc.collect()  # asyncpg closes a dropped statement before the next one it prepares
    await repo.query("SELECT 1")
    result = await repo.query(
        "SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1 AND statement NOT LIKE '%pg_prepared%'",
        [like],
    )
    return [row[0] for row in result.rows]


async def test_each_plain_write_is_one_statement_with_the_same_text_object(repo: Repo) -> None:
    sent = Sent(repo)
    for i in range(3):
        w = await repo.insert(Weather(city=f"c{i}", temp_lo=i))
        w = await repo.update(change(w, temp_hi=i + 10))
        await repo.delete(w)
    sql = await sent.statements()
    assert len(sql) == 9  # no BEGIN/COMMIT around a write without prepare_changes or associations
    inserts, updates, deletes = sql[0::3], sql[1::3], sql[2::3]
    assert inserts[0] == 'INSERT INTO "weather" ("city", "temp_lo", "prcp") VALUES ($1, $2, $3) RETURNING "id"'
    assert updates[0] == 'UPDATE "weather" SET "temp_hi" = $1 WHERE "id" = $2'
    assert deletes[0] == 'DELETE FROM "weather" WHERE "id" = $1'
    for same in (inserts, updates, deletes):  # built once: the driver's statement cache is keyed by it
        assert all(s is same[0] for s in same)


async def test_a_shape_is_prepared_once_per_connection(repo: Repo) -> None:
    async with repo.checkout():  # one connection: its prepared statements are the ones listed
        for i in range(4):
            w = await repo.insert(Weather(city=f"p{i}", temp_lo=i))
            await repo.update(change(w, temp_hi=100 + i))
        assert len(await _prepared(repo, 'INSERT INTO "weather" ("city", "temp_lo", "prcp")%')) == 1
        assert len(await _prepared(repo, 'UPDATE "weather" SET "temp_hi" = $1 WHERE "id" = $2')) == 1


async def test_a_different_shape_of_the_same_schema_is_its_own_statement(repo: Repo) -> None:
    sent = Sent(repo)
    a = await repo.insert(Weather(city="a"))
    b = await repo.insert(Weather(city="b", temp_hi=3))
    c = await repo.insert(change(Weather(), city="c", prcp=None))  # a change to None is sent as NULL
    sql = await sent.statements()
    assert sql == [
        'INSERT INTO "weather" ("city", "prcp") VALUES ($1, $2) RETURNING "id"',
        'INSERT INTO "weather" ("city", "temp_hi", "prcp") VALUES ($1, $2, $3) RETURNING "id"',
        'INSERT INTO "weather" ("city", "prcp") VALUES ($1, $2) RETURNING "id"',
    ]
    assert (a.prcp, b.temp_hi, c.prcp) == (0.0, 3, None)
    assert [(w.city, w.prcp) for w in [await repo.get_or_raise(Weather, x.id) for x in (a, b, c)]] == [
        ("a", 0.0),
        ("b", 0.0),
        ("c", None),
    ]


async def test_virtual_fields_timestamps_and_read_after_writes_survive_the_fast_path(repo: Repo) -> None:
    post = await repo.insert(change(Post(title="t"), draft_notes="kept on the struct"))
    assert post.draft_notes == "kept on the struct"  # virtual: set on the result, never sent
    assert post.inserted_at is not None and post.inserted_at == post.updated_at
    assert meta(post).state == "loaded" and meta(post).inserted is True
    sent = Sent(repo)
    same = await repo.update(change(post, draft_notes="only virtual"))
    assert await sent.statements() == []  # nothing stored changed: nothing sent
    assert same.draft_notes == "only virtual" and same.updated_at == post.updated_at
    later = await repo.update(change(post, title="t2", draft_notes="with a change"))
    assert (later.title, later.draft_notes) == ("t2", "with a change")
    assert later.updated_at is not None and post.updated_at is not None and later.updated_at >= post.updated_at
    assert meta(later).inserted is None and meta(later).state == "loaded"
    user = await repo.insert(User(email="x@example.com"))
    assert user.score == 42  # read_after_writes comes back with the generated id
    user = await repo.update(change(user, email="y@example.com"))
    assert user.score == 42
    gone = await repo.delete(user, returning=["email"])
    assert (meta(gone).state, gone.email) == ("deleted", "y@example.com")
    assert await repo.get(User, user.id) is None
