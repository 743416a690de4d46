"""Time arguments and clear errors of the CLI."""

from __future__ import annotations

import pytest
import typer

from shoprelay.cli.common import clear_errors, parse_time
from shoprelay.errors import ShoprelayError


def test_relative_ages_count_back_from_now() -> None:
    """2h means two hours before now; 7d seven days."""
    assert parse_time("2h", now=10_000) == 10_000 - 7200
    assert parse_time("7d", now=1_000_000) == 1_000_000 - 7 * 86400


def test_iso_times_without_offset_are_utc() -> None:
    """An ISO time without an offset is read as UTC."""
    assert parse_time("1970-01-02T00:00:00") == 86400
    assert parse_time("1970-01-02T01:00:00+01:00") == 86400


def test_nonsense_is_a_clear_error() -> None:
    """Anything else is refused with the value named."""
    with pytest.raises(ShoprelayError, match="yesterday"):
        parse_time("yesterday")


def test_clear_errors_print_the_message_literally(capsys: pytest.CaptureFixture[str]) -> None:
    """Brackets in a message are text, not markup, and a long line is not wrapped."""
    long_line = "  DATABASE_URL: " + "x" * 120
    with pytest.raises(typer.Exit) as stopped, clear_errors():
        raise ShoprelayError(f"bad [x] here [red]\n{long_line}")
    assert stopped.value.exit_code == 1
    printed = capsys.readouterr().err
    assert "error: bad [x] here [red]" in printed
    assert long_line in printed.splitlines()
