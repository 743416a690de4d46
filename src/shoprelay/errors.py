"""The few errors a user can meet."""


class ShoprelayError(Exception):
    """Base of every error shoprelay reports to a person."""


class ConfigError(ShoprelayError):
    """A setting is missing or malformed; the message names the variable, never its value."""


class NotFoundError(ShoprelayError):
    """A dead letter or item that a command named does not exist."""


class SourceAuthError(ShoprelayError):
    """A source API (ShipStation) refused our credentials."""
