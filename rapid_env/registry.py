"""Name -> factory registries shared by the CLI, the sweep runner, the wrapper and W&B config.

One registry per kind of thing (tasks, noises, links, devices, profiles, deciders, policies) means
every front end speaks the same names, and an unknown name fails the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a name that is not registered; the message lists the allowed names."""

    def __init__(self, kind: str, name: str, allowed: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.allowed = allowed
        super().__init__(f"unknown {kind} {name!r}; allowed: {', '.join(allowed)}")


class Registry(Generic[T]):
    """A mapping from names to factories, with a helpful error for unknown names.

    Example:
        >>> links: Registry[int] = Registry("link")
        >>> links.register("ideal", lambda: 0)
        >>> links.create("ideal")
        0
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T]) -> None:
        """Register ``factory`` under ``name``; registering a name twice is a bug."""
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._factories)

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise :class:`UnknownNameError`."""
        if name not in self._factories:
            raise UnknownNameError(self.kind, name, self.names())
        return name

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        """Build the thing registered under ``name``."""
        return self._factories[self.check(name)](*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)
