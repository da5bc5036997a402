"""Name-based construction for families of components (strategies, verifiers).

A family's root class sets ``kind`` and its own ``registry`` dict; each
subclass with a ``name`` registers itself when its module is imported (each
family's package imports all its modules), so adding one never touches the others.
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
    def create(cls, name: str, **params):
        """The named component, its parameters checked against their declaration (``testtime.params``)."""
        from testtime.params import build

        return build(cls.lookup(name), f"{cls.kind} {name!r}", params)


def import_all(package: str, path) -> None:
    """Import every public module of a package, so that each registers what it defines."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
