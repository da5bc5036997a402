"""Python programs in model replies: the function a reply writes, and the examples a prompt shows.

Pure text work, no execution: which program a reply holds (a fenced block, a bare completion of the
prompt's function), the functions a prompt defines, and the visible examples of its docstrings
(``>>>`` doctests and the common prose forms), each a call with its expected value. Running them is
``testtime.sandbox``'s; comparing what came back is ``same_value`` here, outside the sandbox.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from functools import lru_cache

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
# What separates a call from its value in prose: "f(x) == y", "f(x) ➞ y", "f(x) => y", "f(x) -> y",
# "f(x) = y", "f(x) returns y", "f(x) should return y", "f(x) --> y".
_SEPARATOR = re.compile(r"\s*(?:==>|==|➞|=>|-->|->|→|=|\bshould\s+(?:be|return)\b|\breturns?\b|\bgives?\b|\bis\b)\s*:?\s*")


@dataclass(frozen=True)
class Example:
    call: str  # an expression, e.g. "add(2, 3)"
    expected: str  # the source of the value it should equal, e.g. "5"


_UNPARSABLE = (SyntaxError, ValueError, TypeError, MemoryError, RecursionError)  # what odd text makes ast raise
# A docstring line longer than this is no example: prose parsing tries every prefix of a line, so a
# request's megabyte line would otherwise cost a worker minutes.
_LONGEST_EXAMPLE_LINE = 500


def _parse(text: str, mode: str = "exec") -> ast.AST | None:
    try:
        return ast.parse(text, mode=mode)
    except _UNPARSABLE:
        return None


def _parses(program: str) -> str | None:
    return program if _parse(program) is not None else None


def defined_functions(source: str) -> list[str]:
    """Names of the top-level functions a source defines, in order; [] where it does not parse."""
    tree = _parse(source)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] if tree else []


def entry_point(prompt: str) -> str | None:
    """The function a HumanEval-style prompt asks for: the last one it defines."""
    names = defined_functions(prompt)
    return names[-1] if names else None


def extract_program(prompt: str, reply: str, entry: str | None = None) -> str | None:
    """The whole program a reply means: the prompt's code (its imports and helpers) and then the
    reply's definition of the function, or the prompt completed by the reply where the reply is a
    bare body. None when the reply holds no code that parses."""
    entry = entry or entry_point(prompt)
    blocks = [b for b in _FENCE.findall(reply) if b.strip()]
    if entry is None:  # the prompt is prose, not code to complete: the reply's own code is the program
        start = re.search(r"^(?:def|class|import|from)\s", reply, re.M)
        code = max(blocks, key=len) if blocks else reply[start.start():] if start else None
        return _parses(_definitions(code)) if code is not None else None
    defines = re.compile(rf"^[ \t]*(?:async\s+)?def\s+{re.escape(entry)}\s*\(", re.M)
    start = defines.search(reply)
    code = next((b for b in blocks if defines.search(b)), None) or (max(blocks, key=len) if blocks else None)
    code = code if code is not None else reply[start.start():] if start else None
    kept = _definitions(code) if code is not None else ""
    if entry in defined_functions(kept):
        return _parses(prompt.rstrip() + "\n\n\n" + kept.strip() + "\n")
    return _parses(prompt + (code if code is not None else reply))  # a bare body that continues the prompt


_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def _definitions(code: str) -> str:
    """The code's definitions alone: imports, functions, classes and assignments, without the demo
    calls, prints, input() and self-made asserts a reply adds at the top level (what EvalPlus's
    sanitizer keeps). Code that does not parse is cut by lines instead."""
    tree = _parse(code)
    if tree is None:
        return _without_main_lines(code)
    lines = code.splitlines()
    return "\n\n".join("\n".join(lines[_first_line(n) - 1:n.end_lineno]) for n in tree.body if isinstance(n, _KEPT))


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


def _without_main_lines(code: str) -> str:
    lines, kept, skipping = code.splitlines(), [], False
    for line in lines:
        top = line[:1] not in (" ", "\t", "")
        if top and re.match(r"if\s+__name__\s*==", line):
            skipping = True
            continue
        if skipping and top:
            skipping = False
        if skipping or (top and re.match(r"(print|input)\s*\(", line)):
            continue
        kept.append(line)
    return "\n".join(kept)


@lru_cache(maxsize=128)  # a question's 16 candidates, its verifier and its revisions all ask
def visible_examples(prompt: str) -> tuple[Example, ...]:
    """The examples a prompt's docstrings show, as calls of the functions it defines."""
    names = defined_functions(prompt)
    if not names:
        return ()
    found: list[Example] = []
    for doc in _docstrings(prompt):
        found += _doctests(doc) or _prose_examples(doc, names) or _input_output(doc, names[-1])
    return tuple(e for e in dict.fromkeys(found) if _names_known(e.call, names))


def _names_known(call: str, functions: list[str]) -> bool:
    """A call of the prompt's functions on values: "is_happy(a)" names a variable the prose never set."""
    import builtins

    used = {n.id for n in ast.walk(_parse(call, mode="eval")) if isinstance(n, ast.Name)}
    return bool(used & set(functions)) and used <= set(functions) | set(dir(builtins))


def _docstrings(prompt: str) -> list[str]:
    tree = _parse(prompt)
    docs = []
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                docs.append("\n".join(line for line in doc.splitlines() if len(line) <= _LONGEST_EXAMPLE_LINE))
    return docs


def _doctests(doc: str) -> list[Example]:
    lines, out, k = doc.splitlines(), [], 0
    while k < len(lines):
        line = lines[k].strip()
        if not line.startswith(">>>"):
            k += 1
            continue
        call = _strip_comment(line[3:].strip())
        k += 1
        expected_lines = []
        while k < len(lines) and lines[k].strip() and not lines[k].strip().startswith(">>>"):
            expected_lines.append(lines[k].strip())
            k += 1
        expected = " ".join(expected_lines)
        if not expected:  # ">>> f(x) == y" with no output line states the value in the call
            call, _, expected = call.partition(" == ")
        if expected and _is_expression(call) and _is_literal(expected):
            out.append(Example(call, expected))
    return out


_INPUT = re.compile(r"^\s*(?:Input|For)\s*:?\s*(.+?)\s*$", re.IGNORECASE)
_OUTPUT = re.compile(r"^\s*Output\s*:?\s*(.+?)\s*$", re.IGNORECASE)
_SHOULD_BE = re.compile(r"\bthe output should be\s+(.+)$", re.IGNORECASE)


def _input_output(doc: str, entry: str) -> list[Example]:
    """"Input: grid = [[1]], k = 3" then "Output: [1]", and "For num = 'AB' the output should be 1."."""
    out, pending = [], None
    for line in doc.splitlines():
        should = _SHOULD_BE.search(line)
        found = _INPUT.match(line[: should.start()] if should else line)
        if found:
            pending = _arguments(found.group(1))
        if should and pending is not None:
            expected = _leading_literal(_python_words(should.group(1)))
            if expected is not None:
                out.append(Example(f"{entry}({pending})", expected))
            pending = None
        elif (output := _OUTPUT.match(line)) and pending is not None:
            expected = _leading_literal(_python_words(output.group(1)))
            if expected is not None:
                out.append(Example(f"{entry}({pending})", expected))
            pending = None
    return out


def _arguments(text: str) -> str | None:
    """"grid = [[1, 2]], k = 3" -> "[[1, 2]], 3": the values, in order, of the arguments a line names."""
    text = re.sub(r"(^|,|\band\b)\s*[A-Za-z_]\w*\s*=(?!=)\s*", r"\1 ", text.strip()).replace(" and ", ", ")
    for end in range(len(text), 0, -1):
        args = text[:end].strip().rstrip(",")
        if args and _is_literal(f"({args},)"):
            return args
    return None


def _python_words(text: str) -> str:
    return re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))


def _prose_examples(doc: str, names: list[str]) -> list[Example]:
    out = []
    pattern = re.compile(rf"\b({'|'.join(map(re.escape, names))})\s*\(")
    for line in doc.splitlines():
        for match in pattern.finditer(line):
            end = _closing_paren(line, match.end() - 1)
            if end is None:
                continue
            call, rest = line[match.start():end + 1], line[end + 1:]
            sep = _SEPARATOR.match(rest)
            if not sep:
                continue
            expected = _leading_literal(_python_words(rest[sep.end():]))
            if expected is not None and _is_expression(call):
                out.append(Example(call, expected))
    return out


def _closing_paren(text: str, start: int) -> int | None:
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _leading_literal(text: str) -> str | None:
    """The longest prefix of the text that is a Python literal ("[1, 2]. Also..." -> "[1, 2]")."""
    text = _strip_comment(text.strip()).rstrip().rstrip(".")  # "the output should be 1." -> 1
    for end in range(len(text), 0, -1):
        candidate = text[:end].strip().rstrip(",;")
        if candidate and _is_literal(candidate):
            # "19 - 5 - 6 = 8" is arithmetic, not the value 19
            return None if re.match(r"\s*[-+*/%]", text[end:]) else candidate
    return None


def _strip_comment(text: str) -> str:
    return text.split("  #")[0].split(" # ")[0].strip()


def _is_expression(text: str) -> bool:
    return _parse(text, mode="eval") is not None


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
        return True
    except _UNPARSABLE:
        return False


def same_value(returned_repr: str | None, expected: str) -> bool:
    """Whether a call's returned repr() equals the expected literal: as values (floats within 1e-6,
    a bool only equals a bool), else as text. Decided here, outside the program's process."""
    if returned_repr is None:
        return False
    try:
        got, want = ast.literal_eval(returned_repr), ast.literal_eval(expected)
    except _UNPARSABLE:
        return returned_repr.strip() == expected.strip()
    return _equal(got, want)


def _equal(got, want) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got == want
    if isinstance(want, float) or isinstance(got, float):
        return isinstance(got, (int, float)) and isinstance(want, (int, float)) and math.isclose(
            got, want, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(map(_equal, got, want))
    return type(got) is type(want) and got == want


def program_block(reply: str) -> str | None:
    """The program a reply writes to be run as it is (program of thought): its last fenced block
    that parses, else the whole reply where it parses; its prints are kept."""
    for block in reversed(_FENCE.findall(reply)):
        if block.strip() and _parses(block):
            return block
    return reply if reply.strip() and _parses(reply) else None

