"""Name -> factory registries shared by the CLI, the sweep runner, the wrapper and W&B config.

One registry per kind of thing (tasks, noises, links, devices, profiles, deciders, policies) means
every front end speaks the same names, and an unknown name fails the same way everywhere.
:class:`ConfigRegistry` adds ``name(key=value,...)`` specs (:mod:`rapid_env.specs`) over a
registered config dataclass, for things users tune from the command line (the deciders).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from rapid_env.specs import SpecError, build_config, is_spec_name, parse_spec

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



@dataclasses.dataclass(frozen=True)
class ConfigEntry(Generic[T]):
    """A name registered with a config class: what :class:`ConfigRegistry` builds it from.

    Attributes:
        config_cls: the frozen config dataclass whose fields a spec may set.
        factory: ``factory(config, *args, name=spec_text, **kwargs)`` builds the thing.
        preset: the config the plain name stands for (None: ``config_cls()``).
    """

    config_cls: type
    factory: Callable[..., T]
    preset: object | None = None

    def base(self) -> object:
        """The config that a spec's overrides apply to."""
        return self.config_cls() if self.preset is None else self.preset


class ConfigRegistry(Registry[T]):
    """A :class:`Registry` whose names may take ``name(key=value,...)`` overrides.

    ``register_config`` ties a name to a config dataclass, a factory and a preset; ``create`` and
    ``check`` then accept the plain name (the preset, named as registered), and specs that
    override preset fields (named by the spec text as given). Plain ``register`` entries and
    ``prefix:`` forms work as in :class:`Registry`: a prefix form's argument is never parsed (a
    path may contain parentheses), and a plain entry takes no overrides.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Cfg:
        ...     n: int = 1
        >>> r: ConfigRegistry[tuple[str, int]] = ConfigRegistry("thing")
        >>> r.register_config("t", Cfg, lambda cfg, name: (name, cfg.n))
        >>> r.create("t"), r.create("t(n=3)")
        (('t', 1), ('t(n=3)', 3))
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self._configs: dict[str, ConfigEntry[T]] = {}

    def register_config(
        self,
        name: str,
        config_cls: type,
        factory: Callable[..., T],
        preset: object | None = None,
    ) -> None:
        """Register ``name`` built by ``factory(config, name=spec_text)`` from ``config_cls``.

        Args:
            name: the plain name; it stands for ``preset`` (or ``config_cls()``).
            config_cls: a dataclass whose ``__post_init__`` validates its fields.
            factory: builds the thing from a config, receiving the spec text as ``name``.
            preset: a ``config_cls`` instance the name's overrides start from.
        """
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{self.kind} {name!r}: config {config_cls!r} is not a dataclass")
        if preset is not None and not isinstance(preset, config_cls):
            raise TypeError(f"{self.kind} {name!r}: preset {preset!r} is not a {config_cls}")
        if not is_spec_name(name):
            raise ValueError(f"{self.kind} name {name!r} cannot be written in a spec")
        entry: ConfigEntry[T] = ConfigEntry(config_cls, factory, preset)

        def plain(*args: object, **kwargs: object) -> T:
            return entry.factory(entry.base(), *args, name=name, **kwargs)

        self.register(name, plain)
        self._configs[name] = entry

    def config_class(self, name: str) -> type | None:
        """The config dataclass registered for plain ``name`` (None for a plain entry)."""
        entry = self._configs.get(name)
        return None if entry is None else entry.config_cls

    def _resolve(self, spec: str) -> tuple[str, ConfigEntry[T] | None, object | None]:
        """(name, entry, config) for a spec that is neither a plain name nor a prefix form."""
        name, overrides = parse_spec(spec)
        if name not in self._factories:
            raise UnknownNameError(self.kind, name, self.names())
        entry = self._configs.get(name)
        if entry is None:
            if overrides:
                raise SpecError(
                    f"{spec}: {self.kind} {name!r} takes no options; allowed: (none)"
                )
            return name, None, None
        return name, entry, build_config(entry.config_cls, overrides, entry.base(), spec=spec)

    def config(self, spec: str) -> object | None:
        """The validated config that ``spec`` builds (None for entries without a config class).

        Raises:
            UnknownNameError: the name is not registered.
            SpecError: the spec is malformed or a field or value is not allowed.
        """
        if spec in self._factories:
            entry = self._configs.get(spec)
            return None if entry is None else entry.base()
        if self._prefix_of(spec) is not None:
            return None
        return self._resolve(spec)[2]

    def check(self, name: str) -> str:
        """Return the spec if it builds, else raise; the config is built, not only the name.

        Raises:
            UnknownNameError: the name is not registered.
            SpecError: the spec is malformed or a field or value is not allowed.
        """
        if name in self._factories or self._prefix_of(name) is not None:
            return name
        self._resolve(name)
        return name

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        """Build the thing a plain name, a ``prefix:`` form or a ``name(k=v,...)`` spec names."""
        if name in self._factories or self._prefix_of(name) is not None:
            return super().create(name, *args, **kwargs)
        plain, entry, config = self._resolve(name)
        if entry is None:
            return self._factories[plain](*args, **kwargs)
        return entry.factory(config, *args, name=name, **kwargs)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.check(name)
        except ValueError:
            return False
        return True
