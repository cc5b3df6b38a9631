"""A tiny name -> object registry with helpful errors (used for envs, presets, bodies)."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


def closest(name: str, options, n: int = 3) -> str:
    """A human-readable 'did you mean' hint."""
    hits = difflib.get_close_matches(name, list(options), n=n, cutoff=0.4)
    return f" Did you mean: {', '.join(hits)}?" if hits else ""


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} '{name}'.{closest(name, self._items)} "
                           f"Available: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
