"""What an operator asks of shoprelay, from the CLI or the HTTP app: its status, replays of
dead letters. Reads and writes through store/, and through sources/ where a source's own
knowledge is needed; neither imports this package."""
