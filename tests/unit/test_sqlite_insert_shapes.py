"""SQLite's multi-row INSERTs come in a few fixed sizes, so that the statements pysqlite keeps
prepared per connection stay few and small, however the group sizes vary."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select

from shoprelay.store.dialects.sqlite import (
    DIALECT,
    MAX_ROWS_PER_INSERT,
    SMALLEST_POWER,
    chunk_sizes,
)

rows_table = Table(
    "rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
)


def test_any_number_of_rows_splits_into_powers_of_two_and_one_small_rest() -> None:
    for rows in range(0, 1_000):
        sizes = chunk_sizes(rows, 100)
        assert sum(sizes) == rows
        assert set(sizes) <= {64, 32, 16, *range(1, 16)}
        assert sizes == sorted(sizes, reverse=True)
        assert len(sizes) <= rows // 64 + 3
        assert sum(1 for size in sizes if size < 16) <= 1
    assert chunk_sizes(5, 8) == [5]
    assert chunk_sizes(3, 1) == [1, 1, 1]


def test_groups_of_every_size_share_a_few_insert_texts_and_every_row_lands() -> None:
    engine = create_engine("sqlite://")
    rows_table.metadata.create_all(engine)
    texts: set[str] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT"):
            texts.add(statement)

    statement = DIALECT.insert(rows_table).on_conflict_do_nothing()
    written = 0
    with engine.begin() as conn:
        for size in range(1, 400):
            group = [{"id": written + n, "name": f"row {written + n}"} for n in range(size)]
            # A row already stored, first: its conflict is ignored and the rest still land.
            again = [{"id": written - 1, "name": "again"}] if written else []
            DIALECT.insert_rows(conn, statement, again + group)
            written += size
        stored = conn.execute(select(rows_table.c.id, rows_table.c.name)).all()
    engine.dispose()
    assert sorted(stored) == [(n, f"row {n}") for n in range(written)]
    powers = MAX_ROWS_PER_INSERT.bit_length() - SMALLEST_POWER.bit_length() + 1
    assert len(texts) == powers + SMALLEST_POWER - 1
