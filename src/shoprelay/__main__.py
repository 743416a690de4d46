from shoprelay.cli.main import app

app()
