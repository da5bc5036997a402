"""Specs: names and settings become checked objects, in one place.

The command line, the server and the Python API all build verifiers and plans
of strategies here, so the same name means the same object everywhere and a
bad setting gets the same message (naming the component, the parameter, the
value and what is allowed) wherever it was given. Everything is checked when
it is built, before any model loads.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from testtime.heads.artifact import shipped_artifact
from testtime.params import ParameterError, parse_assignments, parse_settings
from testtime.runner import Unit
from testtime.strategies import ParallelStrategy, Strategy
from testtime.verifiers import ProcessVerifier, Verifier


def make_verifier(name: str | None, *, aggregation: str | None = None, model: str | None = None,
                  options: Mapping[str, Any] | None = None, text: bool = False,
                  policy: str | None = None) -> Verifier | None:
    """The named verifier (None for no verifier or "none"); ``text``: option values are command-line text.

    ``model`` fills the verifier's model parameter (a checkpoint, an artifact folder, a URL). Without
    one, a trained verifier (``prm``, ``orm``) loads the artifact shipped for ``policy``, the model
    whose solutions it will score, where one ships; else the default model's."""
    options = dict(options or {})
    if name is None or name == "none":
        if aggregation:
            raise ParameterError("aggregation applies to a verifier's step scores: name a verifier too")
        if model or options:
            raise ParameterError("a verifier model and verifier options apply to a verifier: name a verifier too")
        return None
    cls = Verifier.lookup(name)
    owner = f"verifier {name!r}"
    if text:
        options = parse_settings(cls, owner, options)
    if aggregation is not None:
        if not issubclass(cls, ProcessVerifier):
            raise ParameterError(f"{owner} scores whole solutions: aggregation does not apply")
        options["aggregation"] = aggregation
    if model is None and cls.model_parameter == "artifact" and policy and shipped_artifact(policy):
        model = str(shipped_artifact(policy))
    if model is not None:
        if not cls.model_parameter:
            raise ParameterError(f"{owner} takes no model")
        options[cls.model_parameter] = model
    return Verifier.create(name, **options)


def split_budgets(spec: str) -> tuple[str, list[int]]:
    """'beam_search@4,16' -> ('beam_search', [4, 16]); a plain name takes the run's budgets."""
    name, _, budgets = spec.partition("@")
    try:
        return name, [int(b) for b in budgets.split(",")] if budgets else []
    except ValueError:
        raise ParameterError(f"strategy {spec!r}: budgets after '@' must be integers, e.g. beam_search@4,16") from None


def split_spec(spec: str) -> tuple[str, dict[str, str], list[int]]:
    """'revisions[chains=4,context=2]@16' -> ('revisions', {'chains': '4', 'context': '2'}, [16]): a strategy
    with parameters of its own (beside the run's --param), so one sweep can hold several settings."""
    head, at, budgets = spec.partition("@")
    name, bracket, rest = head.partition("[")
    if bracket and not rest.endswith("]"):
        raise ParameterError(f"strategy {spec!r}: parameters go in brackets, e.g. revisions[chains=4]@16")
    own = rest[:-1].strip()
    settings = parse_assignments(f"strategy {spec!r}", [p.strip() for p in own.split(",")]) if own else {}
    return name, settings, split_budgets(name + at + budgets)[1]


def strategy_units(specs: Sequence[str], budgets: Sequence[int], seeds: Sequence[int], verifier: Verifier | None, *,
                   params: Mapping[str, Any] | None = None, texts: Mapping[str, str] | None = None,
                   unused: str = "error") -> list[Unit]:
    """Every strategy at every budget and seed, checked against the verifier.

    ``params`` (typed) and ``texts`` (command-line text) go to each strategy that takes them;
    one that no chosen strategy takes is an error; with ``unused="ignore"``, only one that no
    strategy at all takes (a typo)."""
    parsed = [split_spec(spec) for spec in specs]
    classes = {name: Strategy.lookup(name) for name, _, _ in parsed}
    given = {**(params or {}), **(texts or {})}
    if "budget" in given:  # else it would silently override the budgets asked for
        raise ParameterError("budget is not a strategy parameter here: give it as the budget (or NAME@B1,B2)")
    for option in given:
        takers = sorted(n for n, c in Strategy.registry.items() if option in c.parameters())
        if not any(option in cls.parameters() for cls in classes.values()) and (unused == "error" or not takers):
            chosen = ", ".join(repr(n) for n in classes)
            verb = "strategy {} does" if len(classes) == 1 else "strategies {} do"
            raise ParameterError(f"{verb.format(chosen)} not take {option}; strategies that do: "
                                 f"{', '.join(takers) or 'none'}")
    units: list[Unit] = []
    for name, own, own_budgets in parsed:
        cls = classes[name]
        typed = {k: v for k, v in (params or {}).items() if k in cls.parameters()}
        typed |= parse_settings(cls, f"strategy {name!r}",
                                {**{k: v for k, v in (texts or {}).items() if k in cls.parameters()}, **own})
        for budget in sorted({cls.fixed_budget} if cls.fixed_budget else set(own_budgets or budgets)):
            chosen = Strategy.create(name, **{"budget": budget, **typed})
            chosen.check(verifier)
            units += [Unit(chosen, s) for s in seeds]
    return units


def estimable_from_pool(strategy: Strategy) -> bool:
    """Whether the sweep analysis can estimate this strategy at every budget from one shared pool."""
    return isinstance(strategy, ParallelStrategy) and not strategy.internal


def pool_parallel(units: Sequence[Unit], seeds: Sequence[int], size: int | None = None) -> tuple[list[Unit], list[str]]:
    """One shared pool per seed in place of every parallel unit; (the units, the pooled strategies' names).

    The pool holds ``size`` samples per question (default: the largest pooled budget)."""
    pooled = [u for u in units if estimable_from_pool(u.strategy)]
    if not pooled:
        return list(units), []
    size = size or max(u.strategy.budget for u in pooled)
    pools = [Unit(Strategy.create("pool", budget=size), s) for s in seeds]
    return pools + [u for u in units if u not in pooled], list(dict.fromkeys(u.strategy.name for u in pooled))
