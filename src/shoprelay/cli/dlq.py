"""`shoprelay dlq`: see why each item failed, send it again, or purge it."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from shoprelay.cli.common import console, parse_time, run, settings, show_time, with_store
from shoprelay.errors import NotFoundError
from shoprelay.operations.replay import ReplayReport, replay, replay_open
from shoprelay.service import shopify_metrics
from shoprelay.store import deadletters
from shoprelay.store.database import Store
from shoprelay.store.deadletters import DeadLetter

app = typer.Typer(help="The dead-letter queue: list, show, replay, purge.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
SinceOption = Annotated[str | None, typer.Option(help="Only those since a time (ISO or 2h, 7d).")]


@app.command("list")
def list_(
    json: JsonFlag = False,
    since: SinceOption = None,
    include_replayed: Annotated[bool, typer.Option("--all", help="Include replayed.")] = False,
    limit: int = 100,
) -> None:
    """Dead letters, newest first, with their reasons."""
    config = settings()

    async def main() -> list[DeadLetter]:
        async def work(store: Store) -> list[DeadLetter]:
            async with store.read() as conn:
                return await deadletters.list_open(
                    conn,
                    since=parse_time(since) if since else None,
                    limit=limit,
                    include_replayed=include_replayed,
                )

        return await with_store(config, work, read_only=True)

    letters = run(main)
    if json:
        console.print_json(orjson.dumps([letter.summary() for letter in letters]).decode())
        return
    table = Table("id", "when", "origin", "topic", "status", "reason", "pointer")
    for letter in letters:
        table.add_row(
            str(letter.id),
            show_time(letter.created_at),
            f"{letter.origin}/{letter.source}",
            letter.topic or "-",
            str(letter.status_code or "-"),
            letter.reason,
            letter.pointer or "-",
        )
    console.print(table if letters else "The dead-letter queue is empty.")


@app.command()
def show(dead_letter_id: int, json: JsonFlag = False) -> None:
    """One dead letter in full: Klaviyo's detail and pointer, and what we tried to send."""
    config = settings()

    async def main() -> DeadLetter:
        async def work(store: Store) -> DeadLetter:
            async with store.read() as conn:
                found = await deadletters.get(conn, [dead_letter_id])
            if not found:
                raise NotFoundError(f"no dead letter with id {dead_letter_id}")
            return found[0]

        return await with_store(config, work, read_only=True)

    letter = run(main)
    document = letter.summary() | {
        "detail": letter.detail,
        "scope": letter.scope,
        "outbox_id": letter.outbox_id,
        "body": orjson.loads(letter.body) if letter.body else None,
        "payload": letter.payload.decode("utf-8", "replace") if letter.payload else None,
    }
    if json:
        console.print_json(orjson.dumps(document).decode())
        return
    for key, value in document.items():
        if key in {"body", "payload"} and value:
            console.print(f"[bold]{key}[/bold]:")
            console.print_json(orjson.dumps(value).decode() if key == "body" else str(value))
        else:
            console.print(f"[bold]{key}[/bold]: {value if value is not None else '-'}")


@app.command("replay")
def replay_(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every open dead letter.")] = False,
    since: SinceOption = None,
) -> None:
    """Send dead letters again: named ones, or --all [--since T], a batch at a time."""
    if not ids and not replay_all:
        raise typer.BadParameter("name dead letter ids, or pass --all")
    config = settings()

    def show_progress(letters: int, report: ReplayReport) -> None:
        console.print(f"{letters} dead letters gone through: {_summary(report)}")

    async def main() -> ReplayReport:
        async def work(store: Store) -> ReplayReport:
            metrics = shopify_metrics(config)
            if not ids:
                cutoff = parse_time(since) if since else None
                return await replay_open(store, metrics, since=cutoff, progress=show_progress)
            async with store.read() as conn:
                found = await deadletters.get(conn, ids)
            letters = [letter for letter in found if letter.replayed_at is None]
            missing = set(ids) - {letter.id for letter in letters}
            if missing:
                raise NotFoundError(f"no open dead letter with id {sorted(missing)}")
            return await replay(store, letters, metrics)

        return await with_store(config, work)

    console.print(_summary(run(main)))


def _summary(report: ReplayReport) -> str:
    return f"requeued {report.requeued} deliveries, reprocessed {report.reprocessed} webhooks" + (
        f", {report.still_unprocessable} still unprocessable" if report.still_unprocessable else ""
    )


@app.command()
def purge(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids.")] = None,
    purge_all: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    before: Annotated[str | None, typer.Option(help="Only those before a time.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete dead letters for good, and the bodies of their undelivered items."""
    if not ids and not purge_all and not before:
        raise typer.BadParameter("name dead letter ids, or pass --all or --before")
    if not yes and not typer.confirm("Delete these dead letters for good?"):
        raise typer.Exit(1)
    config = settings()

    async def main() -> int:
        async def work(store: Store) -> int:
            cutoff = parse_time(before) if before else None
            return await deadletters.purge(store, ids=ids or None, before=cutoff)

        return await with_store(config, work)

    console.print(f"purged {run(main)} dead letters")
