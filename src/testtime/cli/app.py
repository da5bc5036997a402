"""The typer application every command module adds its commands to."""

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Test-time compute scaling for LLM reasoning.")
