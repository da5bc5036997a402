"""`testtime serve` and `serve-verifier`: the OpenAI-compatible server, and a verifier over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from testtime.cli.app import app
from testtime.cli.console import console, dtype_option, engine_log, fail, open_generator
from testtime.generators import GeneratorSpec
from testtime.models import DEFAULT_MODEL
from testtime.params import parse_assignments
from testtime.specs import make_verifier


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, help="TOML file of server settings (defaults and caps)"),
    host: Optional[str] = typer.Option(None, help="bind address (default 127.0.0.1: loopback only)"),
    port: Optional[int] = None,
    backend: str = typer.Option("vllm"),
    model: str = typer.Option(DEFAULT_MODEL),
    base_url: Optional[str] = typer.Option(None, help="upstream OpenAI-compatible server, for --backend openai"),
    api_key: list[str] = typer.Option([], help="accepted API key (repeat for several); none: no authentication"),
    max_model_len: int = 2048,
    dtype: str = dtype_option(),
    seed: int = 0,
    log_file: Optional[Path] = typer.Option(None, help="send the engine's and libraries' logs here "
                                                        "(default: the terminal)"),
):
    """Serve an OpenAI-compatible API that adds test-time compute to the model.

    SIGTERM or Ctrl-C drains it: new requests get 503, running searches answer with what
    they have, then the engine shuts down."""
    from testtime.server.app import create_app, run_server
    from testtime.server.config import ServerConfig

    try:
        settings = ServerConfig.from_file(config) if config else ServerConfig()
        spec = GeneratorSpec(backend, model, base_url=base_url, seed=seed, max_model_len=max_model_len, dtype=dtype)
        if settings.verifier is not None:
            make_verifier(settings.verifier, policy=model)  # one that cannot be built stops here, not per request
        for name, path in settings.policies.items():
            if not Path(path).is_file():
                raise ValueError(f"policies.{name}: {path} is no file")
    except (OSError, ValueError, TypeError) as exc:
        fail(str(exc))
    if host:
        settings.host = host
    if port:
        settings.port = port
    if api_key:
        settings.api_keys = tuple(api_key)
    settings.served_model = settings.served_model or model
    with engine_log(log_file):
        gen = open_generator(spec)
        try:
            console.print(f"serving {settings.served_model} on http://{settings.host}:{settings.port}/v1")
            run_server(create_app(settings, gen), settings.host, settings.port)
        finally:
            console.print("stopping the engine ...")
            gen.close()


@app.command("serve-verifier")
def serve_verifier(
    verifier: str = typer.Option("prm", help="verifier name (see `testtime strategies`)"),
    verifier_model: Optional[str] = typer.Option(None, help="its checkpoint, artifact folder or URL"),
    verifier_option: list[str] = typer.Option([], help="a verifier setting NAME=VALUE"),
    aggregation: Optional[str] = None,
    host: str = typer.Option("127.0.0.1", help="bind address (default loopback only)"),
    port: int = 8001,
    api_key: Optional[str] = typer.Option(None, help="required Bearer key; none: no authentication"),
):
    """Serve a verifier over HTTP (testtime's scorer protocol) for `--verifier served --verifier-model URL`."""
    import uvicorn

    from testtime.verifiers.scorer_server import scorer_app

    try:
        if verifier == "none":
            raise ValueError("--verifier none: there is nothing to serve")
        served = make_verifier(verifier, aggregation=aggregation, model=verifier_model, text=True,
                               options=parse_assignments("--verifier-option", verifier_option))
    except ValueError as exc:
        fail(str(exc))
    console.print(f"serving verifier {verifier} on http://{host}:{port}/score")
    uvicorn.run(scorer_app(served, api_key=api_key), host=host, port=port, log_level="warning")
