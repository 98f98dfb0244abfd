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
        self._prefixes: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T]) -> None:
        """Register ``factory`` under ``name``; registering a name twice is a bug."""
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory

    def register_prefix(self, prefix: str, factory: Callable[..., T]) -> None:
        """Register a parametrised family: ``<prefix><arg>`` builds ``factory(arg, ...)``.

        For names that carry a value, such as a checkpoint path (``ckpt:/models/flow``).
        """
        if not prefix.endswith(":"):
            raise ValueError(f"prefix {prefix!r} must end with ':'")
        if prefix in self._prefixes:
            raise ValueError(f"{self.kind} prefix {prefix!r} is already registered")
        self._prefixes[prefix] = factory

    def names(self) -> list[str]:
        """The registered names in registration order, then ``<prefix><...>`` forms."""
        return list(self._factories) + [f"{p}<...>" for p in self._prefixes]

    def _prefix_of(self, name: str) -> str | None:
        for p in self._prefixes:
            if name.startswith(p) and len(name) > len(p):
                return p
        return None

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise :class:`UnknownNameError`."""
        if name not in self._factories and self._prefix_of(name) is None:
            raise UnknownNameError(self.kind, name, self.names())
        return name

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        """Build the thing registered under ``name``."""
        if name in self._factories:
            return self._factories[name](*args, **kwargs)
        prefix = self._prefix_of(self.check(name))
        assert prefix is not None
        return self._prefixes[prefix](name[len(prefix) :], *args, **kwargs)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._factories or self._prefix_of(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)
