"""Ecto parity (issue 19): ``preload_order`` as a function, ``prepare_transaction``,
``insert_all``'s ``replace_changed=`` and ``returning=unsafe_fragment(...)``, ``many_to_many``'s
``join_defaults``, ``on_join_through_conflict`` and ``unique``, and ``belongs_to``'s ``defaults``,
``primary_key`` and ``source``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from asyncecto import QueryEvent, Repo, belongs_to, build_assoc, has_many, many_to_many, schema, unsafe_fragment
from asyncecto.changeset import change, put_assoc
from asyncecto.errors import ArgumentError, InvalidChangesetError, SchemaError, UniqueViolationError
from asyncecto.multi import Multi
from asyncecto.query import fragment, from_, order_by, preload, select, where
from asyncecto.schema import schema_info

from ..assoc_schemas import Comment, Post, Tag, User
from ..conftest import APP_NAME
from ..upsert_schemas import Counter
from .blog_data import seed_blog

#: what the preload_order function of OrderedPost returns (a test changes it between preloads)
ORDER: list[Any] = [("desc", "id")]


def current_order() -> list[Any]:
    return ORDER


@schema("bl_posts")
class OrderedPost:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many("Comment", foreign_key="post_id", preload_order=current_order)
    bad: list[Comment] = has_many("Comment", foreign_key="post_id", preload_order=lambda: 42)  # type: ignore[arg-type]


# -- preload_order as a function ---------------------------------------------------------------


async def test_preload_order_function_is_called_at_each_preload(repo: Repo) -> None:
    await seed_blog(repo)
    try:
        (p1,) = await repo.all(from_(OrderedPost) | where(id=1) | preload("comments"))
        assert [c.text for c in p1.comments] == ["c3", "c2", "c1"]
        ORDER[:] = ["text"]
        (p1,) = await repo.all(from_(OrderedPost) | where(id=1) | preload("comments"))
        assert [c.text for c in p1.comments] == ["c1", "c2", "c3"]
        ps = await repo.preload(await repo.all(from_(OrderedPost) | order_by("id")), "comments")
        assert [[c.text for c in p.comments] for p in ps][:2] == [["c1", "c2", "c3"], ["c4", "c5"]]
    finally:
        ORDER[:] = [("desc", "id")]


async def test_a_preload_order_function_returning_a_bad_value_is_refused(repo: Repo) -> None:
    await seed_blog(repo)
    with pytest.raises(SchemaError, match=r"association 'bad': preload_order function .* got 42"):
        await repo.all(from_(OrderedPost) | where(id=1) | preload("bad"))


# -- prepare_transaction -----------------------------------------------------------------------


class TxRepo(Repo):
    """Records each transaction's options; ``audit=True`` wraps the function (Ecto's example)."""

    query_options = frozenset({"audit"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[Any, dict[str, Any]]] = []
        self.audited: list[str] = []

    def prepare_transaction(
        self, fn: Callable[..., Awaitable[Any]] | Multi | None, options: dict[str, Any]
    ) -> tuple[Callable[..., Awaitable[Any]] | Multi | None, Mapping[str, Any]]:
        self.seen.append((fn, dict(options)))
        if options.pop("audit", False) and callable(fn) and not isinstance(fn, Multi):
            inner = fn

            async def audited(*args: Any) -> Any:
                self.audited.append("start")
                return await inner(*args)

            return audited, options
        return fn, options


@pytest.fixture
def asyncecto_repo(database_url: str, request: pytest.FixtureRequest) -> Repo:
    cls: type[Repo] = getattr(request, "param", Repo)
    return cls(database_url, pool_size=5, server_settings={"application_name": APP_NAME})


tx_repo = pytest.mark.parametrize("asyncecto_repo", [TxRepo], indirect=True)


@tx_repo
async def test_prepare_transaction_sees_fn_and_options_and_can_replace_them(repo: TxRepo) -> None:
    async def work(_repo: Repo) -> int:
        return 7

    assert await repo.transaction(work, audit=True, isolation="repeatable_read") == 7
    fn, options = repo.seen[-1]
    assert fn is work
    assert options == {"isolation": "repeatable_read", "read_only": False, "retry": 0, "audit": True}
    assert repo.audited == ["start"]
    async with repo.transaction(log=False):
        pass
    assert repo.seen[-1] == (None, {"isolation": None, "read_only": False, "retry": 0, "log": False})
    multi = Multi.new() | Multi.run("x", lambda _repo, _changes: 1)
    assert (await repo.transaction(multi))["x"] == 1
    assert repo.seen[-1][0] is multi


class IsolatingRepo(Repo):
    def prepare_transaction(self, fn: Any, options: dict[str, Any]) -> tuple[Any, Mapping[str, Any]]:
        return fn, {**options, "isolation": "serializable"}


class BadRepo(Repo):
    def prepare_transaction(self, fn: Any, options: dict[str, Any]) -> Any:
        return fn


@pytest.mark.no_sandbox  # a real (outermost) transaction: its isolation level applies
@pytest.mark.parametrize("asyncecto_repo", [IsolatingRepo], indirect=True)
async def test_prepare_transaction_options_are_used(repo: Repo) -> None:
    async def level() -> Any:
        return (await repo.query("SELECT current_setting('transaction_isolation')")).rows[0][0]

    assert await repo.transaction(level) == "serializable"


@pytest.mark.parametrize("asyncecto_repo", [BadRepo], indirect=True)
async def test_prepare_transaction_must_return_a_pair(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"must return a \(fn_or_multi, options\)"):
        async with repo.transaction():
            pass


# -- insert_all: replace_changed, returning=unsafe_fragment ------------------------------------


async def _sqls(repo: Repo, events: list[QueryEvent]) -> list[str]:
    await repo.telemetry.flush()
    return [e.sql for e in events if e.sql.startswith("INSERT")]


async def test_replace_changed_false_keeps_the_conflict_target_in_the_set(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    await repo.insert_all(Counter, [{"name": "a", "hits": 1}])
    await repo.insert_all(Counter, [{"name": "a", "hits": 2}], on_conflict="replace_all", conflict_target=["name"])
    await repo.insert_all(
        Counter,
        [{"name": "a", "hits": 3}],
        on_conflict=("replace_all_except", ["code"]),
        conflict_target=["name"],
        replace_changed=False,
    )
    default, kept = (await _sqls(repo, events))[1:]
    assert '"name" = EXCLUDED."name"' not in default and '"hits" = EXCLUDED."hits"' in default
    assert '"name" = EXCLUDED."name"' in kept and '"code" = EXCLUDED."code"' not in kept
    (c,) = await repo.all(from_(Counter))
    assert (c.name, c.hits) == ("a", 3)
    with pytest.raises(ArgumentError, match="replace_changed= must be True or False, got 'no'"):
        await repo.insert_all(
            Counter,
            [{"name": "a"}],
            on_conflict="replace_all",
            conflict_target=["name"],
            replace_changed="no",  # type: ignore[arg-type]
        )


async def test_returning_an_unsafe_fragment_gives_dicts(repo: Repo) -> None:
    n, rows = await repo.insert_all(
        Counter, [{"name": "a", "hits": 1}, {"name": "b", "hits": 2}], returning=unsafe_fragment("name, hits * 10 AS x")
    )
    assert n == 2 and rows == [{"name": "a", "x": 10}, {"name": "b", "x": 20}]
    n, rows = await repo.insert_all(
        "counters",
        [{"name": "a", "hits": 5}],
        on_conflict={"set": {"hits": 7}},
        conflict_target=["name"],
        returning=unsafe_fragment("upper(name) AS up, hits"),
    )
    assert rows == [{"up": "A", "hits": 7}]
    assert await repo.insert_all(Counter, [], returning=unsafe_fragment("id")) == (0, [])
    n, rows = await repo.insert_all(
        Counter,
        from_(Counter) | select(lambda c: {"name": fragment("? || '2'", c.name)}),
        returning=unsafe_fragment("name"),
    )
    assert sorted(r["name"] for r in rows or []) == ["a2", "b2"]


# -- many_to_many: join_defaults, on_join_through_conflict, unique -----------------------------

_LINKS_DDL = (
    "CREATE TABLE ao_links (id bigserial PRIMARY KEY, post_id bigint NOT NULL, tag_id bigint NOT NULL, "
    "role text NOT NULL DEFAULT 'none', UNIQUE (post_id, tag_id))"
)


@schema("ao_links")
class AoLink:
    id: int | None = None
    post_id: int | None = None
    tag_id: int | None = None
    role: str | None = None


@schema("bl_posts")
class LinkPost:
    id: int | None = None
    title: str | None = None
    tags: list[Tag] = many_to_many(
        Tag,
        join_through=AoLink,
        join_keys=[("post_id", "id"), ("tag_id", "id")],
        join_defaults={"role": "author"},
    )
    quiet_tags: list[Tag] = many_to_many(
        Tag,
        join_through="ao_links",
        join_keys=[("post_id", "id"), ("tag_id", "id")],
        on_join_through_conflict="nothing",
    )
    quiet_schema_tags: list[Tag] = many_to_many(
        Tag, join_through=AoLink, join_keys=[("post_id", "id"), ("tag_id", "id")], on_join_through_conflict="nothing"
    )
    loud_tags: list[Tag] = many_to_many(Tag, join_through="ao_links", join_keys=[("post_id", "id"), ("tag_id", "id")])
    unique_tags: list[Tag] = many_to_many(
        Tag, join_through="ao_links", join_keys=[("post_id", "id"), ("tag_id", "id")], unique=True
    )


async def _post_and_tag(repo: Repo) -> tuple[LinkPost, Tag]:
    await repo.query(_LINKS_DDL)
    post = await repo.insert(LinkPost(title="p"))
    tag = await repo.insert(Tag(name="t"))
    return post, tag


async def test_join_defaults_fill_new_join_rows(repo: Repo) -> None:
    post, tag = await _post_and_tag(repo)
    loaded = await repo.preload(post, "tags")
    await repo.update(put_assoc(change(loaded), "tags", [tag]))
    (link,) = await repo.all(from_(AoLink))
    assert (link.post_id, link.tag_id, link.role) == (post.id, tag.id, "author")


def test_join_defaults_need_a_join_schema() -> None:
    with pytest.raises(SchemaError, match="join_defaults needs join_through to be a schema"):
        many_to_many(Tag, join_through="ao_links", join_defaults={"role": "x"})
    with pytest.raises(SchemaError, match="on_join_through_conflict must be 'raise' or 'nothing', got 'replace'"):
        many_to_many(Tag, join_through="ao_links", on_join_through_conflict="replace")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["quiet_tags", "quiet_schema_tags"])
async def test_on_join_through_conflict_nothing_skips_an_existing_join_row(repo: Repo, name: str) -> None:
    post, tag = await _post_and_tag(repo)
    loaded = await repo.preload(post, name)
    await repo.insert(AoLink(post_id=post.id, tag_id=tag.id))  # behind the loaded post's back
    updated = await repo.update(put_assoc(change(loaded), name, [tag]))
    assert [t.id for t in getattr(updated, name)] == [tag.id]
    assert len(await repo.all(from_(AoLink))) == 1


async def test_on_join_through_conflict_raise_is_the_default(repo: Repo) -> None:
    post, tag = await _post_and_tag(repo)
    loaded = await repo.preload(post, "loud_tags")
    await repo.insert(AoLink(post_id=post.id, tag_id=tag.id))
    with pytest.raises(UniqueViolationError):
        await repo.update(put_assoc(change(loaded), "loud_tags", [tag]))


async def test_unique_refuses_duplicate_entries_with_a_changeset_error(repo: Repo) -> None:
    post, tag = await _post_and_tag(repo)
    loaded = await repo.preload(post, ["unique_tags", "loud_tags"])
    cs = put_assoc(change(loaded), "unique_tags", [tag, tag])
    assert not cs.valid
    assert ("unique_tags", ("has duplicate entries", {"validation": "assoc_unique"})) in cs.errors
    with pytest.raises(InvalidChangesetError):
        await repo.update(cs)
    assert put_assoc(change(loaded), "loud_tags", [tag, tag]).valid  # not unique: no check
    assert put_assoc(change(loaded), "unique_tags", [tag]).valid


# -- belongs_to: defaults, primary_key, source -------------------------------------------------


@schema("ao_members", primary_key=False)
class Member:
    user: User | None = belongs_to(User, primary_key=True, source="user_ref", defaults={"name": "anon"})
    post: Post | None = belongs_to(Post, primary_key=True)
    role: str | None = None
    if TYPE_CHECKING:
        user_id: int | None = None
        post_id: int | None = None


async def test_belongs_to_primary_key_and_source_shape_the_foreign_key_field(repo: Repo) -> None:
    info = schema_info(Member)
    assert info.primary_key == ("user_id", "post_id")
    assert info.fields["user_id"].source == "user_ref" and info.fields["post_id"].source == "post_id"
    await repo.query(
        "CREATE TABLE ao_members (user_ref bigint, post_id bigint, role text, PRIMARY KEY (user_ref, post_id))"
    )
    user = await repo.insert(User(name="u"))
    post = await repo.insert(Post(title="p"))
    await repo.insert(Member(user_id=user.id, post_id=post.id, role="owner"))
    got = await repo.get_by(Member, user_id=user.id, post_id=post.id)
    assert got is not None and got.role == "owner"
    loaded = await repo.preload(got, "user")
    assert loaded.user is not None and loaded.user.name == "u"
    (row,) = (await repo.query("SELECT user_ref FROM ao_members")).rows
    assert row[0] == user.id


def test_belongs_to_defaults_fill_a_built_parent() -> None:
    built = build_assoc(Member(), "user", {})
    assert isinstance(built, User) and built.name == "anon"
    assert build_assoc(Member(), "user", {"name": "x"}).name == "x"
    with pytest.raises(SchemaError, match="define_field=False"):
        belongs_to(User, define_field=False, source="user_ref")
