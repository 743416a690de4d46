"""SQLite too old for the statements shoprelay runs is refused at start, with what to do."""

from __future__ import annotations

import sqlite3

import pytest

from shoprelay.errors import ConfigError
from shoprelay.store.dialects.sqlite import require_supported


def test_a_sqlite_without_returning_is_refused_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match=r"SQLite is 3\.31\.1; shoprelay needs 3\.35\.0 or newer"):
        require_supported((3, 31, 1))


def test_sqlite_with_returning_is_accepted() -> None:
    require_supported((3, 35, 0))
    require_supported(sqlite3.sqlite_version_info)  # this machine's
