"""The Weather walkthrough from Ecto's getting-started guide, in asyncecto.

Run it with ``python examples/quickstart.py``. It uses ``$DATABASE_URL`` when set,
else a PostgreSQL answering on 127.0.0.1:5432, else starts an embedded one
(``pip install "asyncecto[embedded]"``), and creates the database if missing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from asyncecto import Repo, meta, migration, schema
from asyncecto.changeset import change
from asyncecto.embedded import database_url
from asyncecto.query import from_, order_by, where


# 1. Define a schema: a frozen struct mapped to the "weather" table.
@schema("weather")
class Weather:
    id: int | None = None  # the primary key (added anyway; declared here for type checkers)
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0


async def main() -> None:
    url = database_url("asyncecto_quickstart")
    repo = Repo(url, pool_size=2)
    print(f"database: {repo.config.masked_url()} ({await repo.storage_up()})")

    async with repo:  # starts the pool and its supervisor; stops them on exit
        # the table comes from examples/migrations/ (asyncecto migrate does the same from a terminal)
        applied = await migration.run(repo, Path(__file__).parent / "migrations", all=True)
        print(f"migrated: {applied or 'nothing pending'}")
        await repo.query("TRUNCATE weather RESTART IDENTITY")

        # 2. Insert structs: the database generates the id.
        krakow = await repo.insert(Weather(city="Kraków", temp_lo=-3, temp_hi=4, prcp=0.5))
        print(f"inserted: {krakow!r}  state={meta(krakow).state}")
        await repo.insert(Weather(city="Lisbon", temp_lo=11, temp_hi=17))
        await repo.insert(Weather(city="Oslo", temp_lo=-9, temp_hi=-2, prcp=1.25))

        # 3. Read one back by primary key, and by other fields.
        fetched = await repo.get(Weather, krakow.id)
        print(f"get:      {fetched!r}")
        print(f"get_by:   {await repo.get_by(Weather, city='Lisbon')!r}")

        # 4. Update through a changeset: only what changed is written.
        warmer = await repo.update(change(krakow, temp_hi=6))
        print(f"updated:  {warmer!r}")

        # 5. Delete.
        oslo = await repo.get_by_or_raise(Weather, city="Oslo")
        gone = await repo.delete(oslo)
        print(f"deleted:  {gone!r}  state={meta(gone).state}")

        # 6. Read everything, and a composed query.
        for w in await repo.all(from_(Weather) | order_by("city")):
            print(f"all:      {w!r}")
        dry = await repo.all(from_(Weather) | where(prcp=0.0))
        print(f"dry:      {[w.city for w in dry]}")
        print(f"sql:      {repo.to_sql(from_(Weather) | where(city='Kraków'))}")

        # 7. Many rows in one statement, and an upsert that says what it did.
        count, _ = await repo.insert_all(Weather, [{"city": "Porto", "temp_lo": 9}, {"city": "Riga", "temp_lo": -4}])
        print(f"insert_all: {count} rows")
        again = await repo.insert(
            Weather(id=krakow.id, city="Kraków", temp_lo=-1, temp_hi=5), on_conflict="replace_all", conflict_target="id"
        )
        print(f"upsert:   {again!r}  inserted={meta(again).inserted}")


if __name__ == "__main__":
    asyncio.run(main())
