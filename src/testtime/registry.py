"""Name-based construction for families of components (strategies, verifiers).

A family's root class sets ``kind`` and its own ``registry`` dict; each
subclass with a ``name`` registers itself when its module is imported, so
adding one never touches the others.
"""

from __future__ import annotations

from typing import ClassVar


class UnknownNameError(ValueError):
    pass


class Registered:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "component"
    kind_plural: ClassVar[str] = "components"
    registry: ClassVar[dict[str, type]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            cls.registry[cls.name] = cls

    @classmethod
    def lookup(cls, name: str) -> type:
        if name not in cls.registry:
            known = ", ".join(sorted(cls.registry)) or "none"
            raise UnknownNameError(f"unknown {cls.kind} {name!r}; known {cls.kind_plural}: {known}")
        return cls.registry[name]

    @classmethod
    def from_name(cls, name: str, **params):
        return cls.lookup(name)(**params)
