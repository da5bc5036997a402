"""`testtime strategies`: every strategy and verifier with its parameters, from their own declarations."""

from __future__ import annotations

from testtime.cli.app import app
from testtime.params import parameters
from testtime.strategies import Strategy
from testtime.verifiers import Verifier


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def _parameter_lines(cls: type) -> list[str]:
    lines = []
    for p in parameters(cls):
        if p.settable:
            lines.append(f"    --param {p.describe()}" if issubclass(cls, Strategy) else f"    {p.describe()}")
        elif p.required:
            lines.append(f"    {p.name}: a {getattr(p.base, '__name__', p.base)} object, required: build it in Python "
                         f"(the command line and the server cannot give one)")
    return lines


@app.command()
def strategies():
    """List the strategies and verifiers, each with its parameters (type, default)."""
    for name, cls in sorted(Strategy.registry.items()):
        if cls.internal:
            continue
        print(f"{name:24s} {_summary(cls)}")
        print("\n".join(_parameter_lines(cls)))
    print()
    for name, cls in sorted(Verifier.registry.items()):
        print(f"verifier {name:15s} {_summary(cls)}")
        print("\n".join(_parameter_lines(cls)) or "    (no parameters)")
        if cls.model_parameter:
            print(f"    --verifier-model fills {cls.model_parameter}")
