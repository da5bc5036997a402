"""Parameters declared once: a component's own fields become typed, checked settings.

A strategy's parameters are its dataclass fields; a verifier's are its
constructor's arguments. From that one declaration come the listing of
`testtime strategies`, the command line's ``--param NAME=VALUE`` (text,
parsed), the server's ``testtime.params`` (JSON, checked as given) and every
error message, which names the component, the parameter, the value and what
is allowed.
"""

from __future__ import annotations

import codecs
import dataclasses
import enum
import functools
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping

REQUIRED = inspect.Parameter.empty
SCALARS = (bool, int, float, str)


class ParameterError(ValueError):
    """A setting that is unknown, missing, or of the wrong type or value."""


@dataclass(frozen=True)
class Param:
    """One settable parameter: its name, type, default and help."""

    name: str
    type: Any  # bool, int, float, str, an Enum class, or one of those or None
    default: Any = REQUIRED
    help: str = ""
    escapes: bool = False  # text given on a command line may spell '\n' for a newline
    # A path on the machine that runs it: a server's client never gives one, only names an entry of the
    # server config's table of that name (ServerConfig.policies).
    names_file: str = ""
    # A model name that opens an engine of its own (revisions' reviser): the server, which opens no
    # model for a request, refuses it.
    opens_model: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def optional(self) -> bool:
        """Whether None is allowed."""
        return type(None) in _members(self.type)

    @property
    def base(self) -> Any:
        """The type without None: an Enum wherever the type allows one, else a plain value's type if allowed."""
        members = [m for m in _members(self.type) if m is not type(None)]
        enums = [m for m in members if isinstance(m, type) and issubclass(m, enum.Enum)]
        scalars = [m for m in members if m in SCALARS]
        return (enums or scalars or members)[0]

    @property
    def settable(self) -> bool:
        """Whether a command line or a JSON body can give it (a plain value, not an object)."""
        base = self.base
        return base in SCALARS or (isinstance(base, type) and issubclass(base, enum.Enum))

    def describe_type(self) -> str:
        base = self.base
        if isinstance(base, type) and issubclass(base, enum.Enum):
            text = "one of " + ", ".join(str(m.value) for m in base)
        else:
            text = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
                base, getattr(base, "__name__", str(base)))
        return text + (" or none" if self.optional else "")

    def describe(self) -> str:
        """'width: an integer = 4' for listings."""
        shown = _show(self.default)
        default = "required" if self.required else f"= {shown if len(shown) <= 60 else shown[:57] + '...'}"
        return f"{self.name}: {self.describe_type()} {default}" + (f"  ({self.help})" if self.help else "")

    def parse(self, owner: str, text: str) -> Any:
        """A value typed on a command line."""
        if self.optional and text.strip().lower() in ("none", "null"):
            return None
        base = self.base
        try:
            if base is bool:
                lowered = text.strip().lower()
                if lowered not in _BOOLEANS:
                    raise ValueError
                return _BOOLEANS[lowered]
            if base is int:
                return int(text)
            if base is float:
                return self.check(owner, float(text))
            if base is str:
                return codecs.decode(text, "unicode_escape") if self.escapes else text
            return self.check(owner, text)  # an Enum
        except ValueError:
            raise self.error(owner, text) from None

    def check(self, owner: str, value: Any) -> Any:
        """A value as JSON gives it (no strings for numbers): the value, or a ParameterError."""
        if value is None and self.optional:
            return None
        if any(isinstance(m, type) and m not in SCALARS and isinstance(value, m) for m in _members(self.type)):
            return value  # an object of a declared type (a Path, a RetryPolicy), from Python
        base = self.base
        if isinstance(base, type) and issubclass(base, enum.Enum):
            try:
                return base(value.value if isinstance(value, enum.Enum) else value)
            except ValueError:
                raise self.error(owner, value) from None
        ok = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            str: isinstance(value, str),
        }.get(base, False)
        if not ok:
            raise self.error(owner, value)
        return float(value) if base is float else value

    def error(self, owner: str, value: Any) -> ParameterError:
        return ParameterError(f"{owner}: parameter {self.name} = {_show(value)}: expected {self.describe_type()}")


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


@functools.cache  # a class's declaration never changes; reading type hints each time would be waste
def parameters(cls: type) -> tuple[Param, ...]:
    """The parameters a class declares: dataclass fields, or else its constructor's arguments."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return tuple(
            Param(f.name, hints[f.name], _field_default(f), f.metadata.get("help", ""),
                  f.metadata.get("escapes", False), f.metadata.get("file", ""), f.metadata.get("opens_model", False))
            for f in dataclasses.fields(cls) if f.init
        )
    hints = typing.get_type_hints(cls.__init__)
    signature = inspect.signature(cls.__init__)
    return tuple(
        Param(name, hints.get(name, Any), p.default)
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )


def build(cls: type, owner: str, given: Mapping[str, Any]):
    """``cls(**given)`` after checking every value against its declaration.

    Unknown names, missing required parameters, wrong types and the class's own checks all
    become a ParameterError that names ``owner``."""
    declared = _declared(cls, owner, given)
    settings = {name: declared[name].check(owner, value) for name, value in given.items()}
    missing = [p for p in declared.values() if p.required and p.name not in settings]
    if missing:
        raise ParameterError(f"{owner} needs {', '.join(p.name for p in missing)}"
                             + ("" if all(p.settable for p in missing) else " (an object this entry point cannot give)"))
    try:
        return cls(**settings)
    except (ValueError, TypeError) as exc:
        message = str(exc).removeprefix(f"{getattr(cls, 'name', '')}: ")  # the class's own "beam_search: ..."
        raise ParameterError(message if message.startswith(owner) else f"{owner}: {message}") from None


def parse_settings(cls: type, owner: str, texts: Mapping[str, str]) -> dict[str, Any]:
    """Command-line text values as the types their parameters declare."""
    declared = _declared(cls, owner, texts)
    return {name: declared[name].parse(owner, text) for name, text in texts.items()}


def _declared(cls: type, owner: str, given: Mapping[str, Any]) -> dict[str, Param]:
    declared = {p.name: p for p in parameters(cls)}
    unknown = [name for name in given if name not in declared]
    if unknown:
        takes = ", ".join(p.name for p in declared.values() if p.settable) or "no parameters"
        raise ParameterError(f"{owner} does not take {', '.join(unknown)}; it takes: {takes}")
    return declared


def parse_assignments(flag: str, assignments: list[str]) -> dict[str, str]:
    """['width=4', 'c=1.4'] -> {'width': '4', 'c': '1.4'}; dashes in names become underscores."""
    out: dict[str, str] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"{flag} {assignment!r}: expected NAME=VALUE, e.g. {flag} width=4")
        out[name.strip().replace("-", "_")] = value
    return out


def _members(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return REQUIRED


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
