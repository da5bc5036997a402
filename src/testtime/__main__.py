from testtime.cli import app

app()
