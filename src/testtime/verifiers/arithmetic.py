"""A programmatic process verifier for arithmetic.

Each step's claims are checked: inline ``a op b = c`` equations and GSM8K-style
``<<a*b=c>>`` annotations. A step with a false claim scores low, a step whose
claims all hold scores high, and a step with nothing to check sits between.
It costs no model tokens and plugs in anywhere a PRM does.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from typing import Sequence

from testtime.verifiers.base import Aggregation, ProcessVerifier, Solution, StepScores

_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_EXPR_CHARS = set("0123456789.,$() +-*/×x÷^\t")
_OPERATORS = set("+-*/×x÷^")
_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


@dataclass(frozen=True)
class Claim:
    expression: str
    stated: str
    holds: bool


def evaluate(expression: str) -> float | None:
    """Value of a plain arithmetic expression, or None if it is not one."""
    text = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace("$", "")
    text = re.sub(r"(?<=\d)x(?=\s*[\d(])|(?<=[\d)]\s)x(?=\s)", "*", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return float(_eval_node(tree.body))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _eval_node(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval_node(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _BINOPS[type(node.op)](left, right)
    raise ValueError("not arithmetic")


def _same_value(computed: float, stated_text: str, stated: float) -> bool:
    """Equal, allowing the rounding the statement itself shows (10/3 = 3.33)."""
    if abs(computed - stated) <= 1e-9 * max(1.0, abs(computed)):
        return True
    decimals = len(stated_text.split(".")[1]) if "." in stated_text else 0
    return decimals > 0 and round(computed, decimals) == round(stated, decimals)


def _claim(expression: str, stated_text: str) -> Claim | None:
    expression = expression.strip().lstrip("+*/×÷^x ,$").strip()
    if not any(op in expression.lstrip("-") for op in _OPERATORS) or not re.search(r"\d", expression):
        return None  # "x = 5" or a lone number is no arithmetic claim
    stated_text = stated_text.strip().replace("$", "").replace(",", "")
    lhs, rhs = evaluate(expression), evaluate(stated_text)
    if lhs is None or rhs is None:
        return None
    return Claim(expression, stated_text, _same_value(lhs, stated_text, rhs))


def find_claims(step: str) -> list[Claim]:
    """Every checkable arithmetic claim in a step of text."""
    claims = []
    for expression, stated in _ANNOTATION.findall(step):
        found = _claim(expression, stated)
        if found:
            claims.append(found)
    plain = _ANNOTATION.sub(" ", step)
    for match in re.finditer(r"=", plain):
        left = _run(plain, match.start(), step=-1)
        right = _run(plain, match.end(), step=1)
        number = re.match(r"\s*\$?\s*-?[\d,]*\.?\d+", right)
        if not number or right[number.end() :].strip()[:1] in _OPERATORS:
            continue  # the right side is itself an expression, checked by the next "="
        found = _claim(left, number.group(0))
        if found:
            claims.append(found)
    return claims


def _run(text: str, start: int, step: int) -> str:
    """The stretch of arithmetic characters left (step=-1) or right (step=1) of ``start``."""
    i = start - 1 if step < 0 else start
    chars = []
    while 0 <= i < len(text) and text[i] in _EXPR_CHARS:
        chars.append(text[i])
        i += step
    return "".join(reversed(chars)) if step < 0 else "".join(chars)


class ArithmeticVerifier(ProcessVerifier):
    """Process verifier that checks every arithmetic claim in each step."""

    name = "arithmetic"

    def __init__(
        self,
        aggregation: Aggregation | str = Aggregation.PRODUCT,
        correct_score: float = 1.0,
        unchecked_score: float = 0.9,
        false_score: float = 0.1,
    ):
        super().__init__(aggregation)
        self.correct_score = correct_score
        self.unchecked_score = unchecked_score
        self.false_score = false_score

    def step_score(self, step: str) -> float:
        claims = find_claims(step)
        if not claims:
            return self.unchecked_score
        return self.correct_score if all(c.holds for c in claims) else self.false_score

    def _score(self, solutions: Sequence[Solution]) -> list[StepScores]:
        return [StepScores(tuple(self.step_score(s) for s in sol.steps)) for sol in solutions]
