"""Specs and declared parameters: names become checked objects, with one message style everywhere."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import pytest

from testtime.params import Param, ParameterError, build, parameters, parse_assignments, parse_settings
from testtime.specs import make_verifier, pool_parallel, split_budgets, split_spec, strategy_units
from testtime.strategies import Strategy


def options(*assignments: str) -> dict:
    return parse_assignments("--verifier-option", list(assignments))


def test_verifier_options_reach_the_constructor_or_are_refused_by_name(tmp_path):
    served = make_verifier("served", aggregation="min", model="http://127.0.0.1:9/score", text=True,
                           options=options("protocol=vllm_pooling", "good-index=0"))
    assert (served.url, served.protocol, served.good_index, served.aggregation.value) == (
        "http://127.0.0.1:9/score/pooling", "vllm_pooling", 0, "min")
    refusals = [
        (dict(name="served", model="http://127.0.0.1:9", options=options("batch_size=many")),
         "verifier 'served': parameter batch_size = 'many': expected an integer"),
        (dict(name="orm", aggregation="min"), "verifier 'orm' scores whole solutions: aggregation does not apply"),
        (dict(name="arithmetic", model="somewhere"), "verifier 'arithmetic' takes no model"),
        (dict(name="arithmetic", options=options("colour=red")), "verifier 'arithmetic' does not take colour; it takes:"),
        (dict(name="llm_judge"), "verifier 'llm_judge' needs generator"),
        (dict(name="served"), "verifier 'served' needs url"),
        (dict(name="llm_judge", model="nowhere"), "verifier 'llm_judge': 'nowhere' is neither an embedded model (smollm2"),
        (dict(name=None, model="somewhere"), "apply to a verifier: name a verifier too"),
        (dict(name="prm", model=str(tmp_path)), "no artifact.json"),
    ]
    for kwargs, message in refusals:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            make_verifier(kwargs.pop("name"), text=True, **kwargs)
    with pytest.raises(ParameterError, match="expected NAME=VALUE"):
        options("protocol")


class Colour(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Thing:
    count: int = 1
    ratio: float = 0.5
    on: bool = False
    colour: Colour = Colour.RED
    label: str | None = None
    text: str = field(default="", metadata={"escapes": True, "help": "some text"})


def test_declared_parameters_parse_text_and_check_json_alike():
    declared = {p.name: p for p in parameters(Thing)}
    assert declared["count"].describe() == "count: an integer = 1"
    assert declared["colour"].describe() == "colour: one of red, blue = 'red'"
    assert declared["label"].describe() == "label: a string or none = None"
    assert declared["text"].describe() == "text: a string = ''  (some text)"
    parsed = parse_settings(Thing, "thing", {"count": "3", "ratio": "2", "on": "yes", "colour": "blue",
                                             "label": "none", "text": "a\\nb"})
    assert parsed == {"count": 3, "ratio": 2.0, "on": True, "colour": Colour.BLUE, "label": None, "text": "a\nb"}
    assert build(Thing, "thing", {"count": 3, "ratio": 2, "colour": "blue"}) == Thing(3, 2.0, colour=Colour.BLUE)
    for given, message in [({"count": "3"}, "thing: parameter count = '3': expected an integer"),
                           ({"count": True}, "parameter count = true: expected an integer"),
                           ({"ratio": float("nan")}, "parameter ratio = nan: expected a number"),
                           ({"on": 1}, "parameter on = 1: expected true or false"),
                           ({"colour": "green"}, "parameter colour = 'green': expected one of red, blue"),
                           ({"label": 5}, "parameter label = 5: expected a string or none"),
                           ({"size": 1}, "thing does not take size; it takes: count, ratio, on, colour, label, text")]:
        with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
            build(Thing, "thing", given)
    with pytest.raises(ParameterError, match="parameter on = 'maybe': expected true or false"):
        parse_settings(Thing, "thing", {"on": "maybe"})


def test_a_required_parameter_that_no_entry_point_can_give_says_so():
    class NeedsObject:
        def __init__(self, engine: Param, size: int = 2):
            self.engine, self.size = engine, size

    with pytest.raises(ParameterError, match=r"needs engine \(an object this entry point cannot give\)"):
        build(NeedsObject, "needs", {"size": 3})
    assert [p.settable for p in parameters(NeedsObject)] == [False, True]


def test_units_take_each_parameter_where_a_strategy_declares_it():
    from testtime.verifiers.arithmetic import ArithmeticVerifier

    units = strategy_units(["majority", "beam_search@4"], [2, 8], [0, 1], ArithmeticVerifier(),
                           params={"width": 2}, texts={"max_depth": "3"})
    described = sorted({(u.strategy.name, u.strategy.budget, getattr(u.strategy, "width", None)) for u in units})
    assert described == [("beam_search", 4, 2), ("majority", 2, None), ("majority", 8, None)]
    assert len(units) == 6 and all(u.strategy.max_depth == 3 for u in units if u.strategy.name == "beam_search")
    with pytest.raises(ParameterError, match="strategy 'majority' does not take width; strategies that do: beam_search"):
        strategy_units(["majority"], [2], [0], None, params={"width": 2})
    assert strategy_units(["majority"], [2], [0], None, params={"width": 2}, unused="ignore")
    with pytest.raises(ParameterError, match="does not take colour; strategies that do: none"):
        strategy_units(["majority"], [2], [0], None, texts={"colour": "red"}, unused="ignore")  # a typo still fails
    with pytest.raises(ParameterError, match="needs a verifier"):
        strategy_units(["best_of_n"], [2], [0], None)
    with pytest.raises(ParameterError, match="budgets after '@' must be integers"):
        split_budgets("beam_search@4,x")


def test_one_sweep_holds_a_strategy_at_several_settings_of_its_own():
    units = strategy_units(["revisions[chains=1]@4", "revisions[chains=2, context=1]@4", "revisions@8"], [2], [0],
                           None, texts={"context": "3"})
    assert [(u.strategy.budget, u.strategy.chains, u.strategy.context) for u in units] == [
        (4, 1, 3), (4, 2, 1), (8, 1, 3)]  # a bracket's own setting wins over the run's --param
    assert split_spec("revisions[chains=4]@16,32") == ("revisions", {"chains": "4"}, [16, 32])
    with pytest.raises(ParameterError, match="parameters go in brackets"):
        split_spec("revisions[chains=4@16")
    with pytest.raises(ParameterError, match="chains = 'x': expected an integer"):
        strategy_units(["revisions[chains=x]"], [2], [0], None)


def test_parallel_units_are_pooled_at_their_largest_budget():
    units = strategy_units(["majority", "single", "beam_search"], [2, 8], [0, 5], verifier=_any_verifier(),
                           params={"width": 2})
    pooled_units, pooled = pool_parallel(units, [0, 5])
    assert pooled == ["majority", "single"]
    assert [(u.strategy.name, u.strategy.budget, u.seed) for u in pooled_units[:2]] == [("pool", 8, 0), ("pool", 8, 5)]
    assert {u.strategy.name for u in pooled_units[2:]} == {"beam_search"}
    assert Strategy.registry["pool"].internal and not Strategy.registry["majority"].internal


def _any_verifier():
    from testtime.verifiers.arithmetic import ArithmeticVerifier

    return ArithmeticVerifier()
