"""The few errors a user can meet."""

from __future__ import annotations

from collections.abc import Sequence


class ShoprelayError(Exception):
    """Base of every error shoprelay reports to a person."""


class ConfigError(ShoprelayError):
    """Settings are missing or malformed; the message names each variable, never its value."""

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        super().__init__(describe_problems(problems))


def describe_problems(problems: Sequence[str]) -> str:
    """One problem as it is; several as a count, then one indented line each, so that a
    configuration is fixed in one pass, not one restart per variable."""
    if len(problems) == 1:
        return problems[0]
    listed = "\n".join(f"  {problem}" for problem in problems)
    return f"{len(problems)} settings need fixing:\n{listed}"


class NotFoundError(ShoprelayError):
    """A dead letter or item that a command named does not exist."""


class SourceAuthError(ShoprelayError):
    """A source API (ShipStation) refused our credentials."""


class SchemaError(ShoprelayError):
    """The database's schema is not the one this release reads; the message says what to run."""
