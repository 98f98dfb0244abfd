"""Name -> factory registries shared by the CLI, the sweep runner, the wrapper and W&B config.

One registry per kind of thing (tasks, noises, links, devices, profiles, deciders, policies,
backends) means every front end speaks the same names, and an unknown name fails the same way
everywhere: one line naming the bad name, the allowed ones, and the closest match ("did you
mean"). :class:`ConfigRegistry` adds ``name(key=value,...)`` specs (:mod:`rapid_env.specs`) over a
registered config dataclass, for things users tune from the command line (the deciders).

Every entry may carry *extras*: named hooks or facts about the thing beyond its factory (a
``remote:`` link's transport, a backend's worker check), so code that must treat some names
differently asks the registry entry instead of testing the name's spelling.

A registry may name an entry-point group (``plugin_group``): the first time it is asked for a name
it does not have, it loads that group's entry points (installed packages that register more
names, :func:`load_plugin_group`) once and looks again; see ``docs/plugging_in_a_policy.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any, Generic, TypeVar

from rapid_env.specs import (
    InvalidKeyError,
    SpecError,
    build_config,
    field_types,
    is_spec_name,
    parse_spec,
)

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a name that is not registered; the message lists the allowed names.

    The closest registered names (``difflib``) follow as "did you mean", since most unknown
    names on a command line are typos of real ones.
    """

    def __init__(
        self, kind: str, name: str, allowed: list[str], candidates: list[str] | None = None
    ) -> None:
        self.kind = kind
        self.name = name
        self.allowed = allowed
        pool = allowed if candidates is None else candidates
        self.suggestions = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, self.suggestions))}?" if (
            self.suggestions) else ""
        super().__init__(f"unknown {kind} {name!r}; allowed: {', '.join(allowed)}{hint}")


def first_alias(
    values: Sequence[str], identity: Callable[[str], object]
) -> tuple[str, str] | None:
    """The first two differently spelled ``values`` whose ``identity`` is equal, else None.

    Compared pairwise with ``==`` (configs need not be hashable; a sweep lists a handful of
    names). A value whose identity cannot be computed (an unknown or malformed name) is compared
    by its text: the check that builds it reports it, named, later.
    """
    ids: list[object] = []
    for value in values:
        try:
            ids.append(identity(value))
        except ValueError:
            ids.append(("text", value))
    for j, (b, id_b) in enumerate(zip(values, ids, strict=True)):
        for a, id_a in zip(values[:j], ids[:j], strict=True):
            if a != b and id_a == id_b:
                return a, b
    return None


class PluginError(ValueError):
    """A plugin (an entry point or an ``--import`` module) failed to load: one line naming it."""


_LOADED_GROUPS: set[str] = set()


def load_plugin_group(group: str) -> list[str]:
    """Load every entry point of ``group`` once per process; return the names of those loaded.

    An entry point is a module (importing it registers its names) or a callable (called with no
    arguments, it registers them). The group is marked loaded before the first one runs, so a
    plugin that asks a registry for a name does not load the group again.

    Raises:
        PluginError: a plugin could not be imported or its callable raised; the message names the
            entry point and its distribution.
    """
    if group in _LOADED_GROUPS:
        return []
    _LOADED_GROUPS.add(group)
    loaded = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, types.ModuleType):
                obj()
        except Exception as exc:  # a plugin's own error of any type: one line naming it
            raise PluginError(
                f"plugin {ep.name!r} ({group} = {ep.value}, from {dist}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        loaded.append(ep.name)
    return loaded


def import_plugin_module(module: str) -> None:
    """Import ``module`` (found on ``sys.path`` / ``PYTHONPATH``) so that it registers its names.

    Raises:
        PluginError: the module cannot be imported; the message names it and the reason.
    """
    try:
        importlib.import_module(module)
    except Exception as exc:
        raise PluginError(
            f"--import {module}: {type(exc).__name__}: {exc} (is its folder on PYTHONPATH?)"
        ) from exc


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name or ``prefix:`` family.

    Attributes:
        factory: builds the thing (a prefix family's factory gets the text after the prefix
            first).
        extras: named hooks or facts about the thing, beyond building it (see
            :meth:`Registry.extra`).
    """

    factory: Callable[..., T]
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Registry(Generic[T]):
    """A mapping from names to factories, with a helpful error for unknown names.

    Example:
        >>> links: Registry[int] = Registry("link")
        >>> links.register("ideal", lambda: 0)
        >>> links.create("ideal")
        0
    """

    def __init__(self, kind: str, plugin_group: str | None = None) -> None:
        self.kind = kind
        self.plugin_group = plugin_group
        self._factories: dict[str, Callable[..., T]] = {}
        self._prefixes: dict[str, Callable[..., T]] = {}
        self._forms: dict[str, str] = {}
        self._extras: dict[str, Mapping[str, Any]] = {}  # also the registration order

    def register(self, name: str, factory: Callable[..., T], **extras: Any) -> None:
        """Register ``factory`` under ``name``; registering a name twice is a bug.

        ``extras`` are kept with the entry (:meth:`extra`), e.g. a hook only some names have.
        """
        if name in self._extras:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._factories[name] = factory
        self._extras[name] = dict(extras)

    def add(self, name: str, **extras: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator form of :meth:`register`: ``@REG.add("name")`` above the factory."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self.register(name, factory, **extras)
            return factory

        return decorate

    def register_prefix(
        self, prefix: str, factory: Callable[..., T], form: str | None = None, **extras: Any
    ) -> None:
        """Register a parametrised family: ``<prefix><arg>`` builds ``factory(arg, ...)``.

        For names that carry a value, such as a checkpoint path (``ckpt:/models/flow``).
        ``form`` is how error messages and help spell the family (``constant:<Mbps>:<rtt_ms>``;
        default ``<prefix><...>``).
        """
        if not prefix.endswith(":"):
            raise ValueError(f"prefix {prefix!r} must end with ':'")
        if prefix in self._extras:
            raise ValueError(f"{self.kind} prefix {prefix!r} is already registered")
        self._prefixes[prefix] = factory
        self._forms[prefix] = form or f"{prefix}<...>"
        self._extras[prefix] = dict(extras)

    def names(self) -> list[str]:
        """The registered names and ``prefix:`` families' forms, in registration order."""
        return [self._forms.get(key, key) for key in self._extras]

    def _candidates(self) -> list[str]:
        """What a "did you mean" may suggest: plain names and bare prefixes."""
        return list(self._factories) + list(self._prefixes)

    def unknown(self, name: str) -> UnknownNameError:
        """The error for ``name``: the allowed names and the closest ones."""
        return UnknownNameError(self.kind, name, self.names(), self._candidates())

    def _prefix_of(self, name: str) -> str | None:
        for p in self._prefixes:
            if name.startswith(p) and len(name) > len(p):
                return p
        return None

    def _known(self, name: str) -> bool:
        return name in self._factories or self._prefix_of(name) is not None

    def _load_plugins(self) -> bool:
        """Load this registry's plugin group if not loaded yet; True if that could add names."""
        if self.plugin_group is None or self.plugin_group in _LOADED_GROUPS:
            return False
        load_plugin_group(self.plugin_group)
        return True

    def _has(self, name: str) -> bool:
        """Whether ``name`` (plain or a prefix form) is registered; plugins load on a miss."""
        return self._known(name) or (self._load_plugins() and self._known(name))

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise :class:`UnknownNameError`."""
        if not self._has(name):
            raise self.unknown(name)
        return name

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        """Build the thing registered under ``name``."""
        if name in self._factories:
            return self._factories[name](*args, **kwargs)
        prefix = self._prefix_of(self.check(name))
        if prefix is None:  # a plain name a plugin registered just now
            return self._factories[name](*args, **kwargs)
        return self._prefixes[prefix](name[len(prefix) :], *args, **kwargs)

    def entry_key(self, name: str) -> str:
        """The key ``name`` is registered under: itself, its prefix, or a spec's plain name."""
        self.check(name)
        return name if name in self._factories else self._prefix_of(name) or name

    def extra(self, name: str, key: str, default: Any = None) -> Any:
        """The extra ``key`` registered with the entry that ``name`` resolves to (or ``default``).

        Raises:
            UnknownNameError: the name is not registered.
        """
        return self._extras.get(self.entry_key(name), {}).get(key, default)

    def identity(self, name: str) -> object:
        """What ``name`` stands for, so two spellings of one thing compare equal.

        A plain name is itself; a ``prefix:`` form is ``(prefix, identity(arg))``, where the
        entry's ``identity`` extra (a callable given the text after the prefix) normalises the
        argument (``constant:20:40`` and ``constant:20.0:40`` -> the same floats); without one the
        argument's text is kept. Duplicate checks of a sweep compare these, not the spelling.

        Raises:
            UnknownNameError: the name is not registered.
            ValueError: the hook's own refusal of a malformed argument.
        """
        key = self.entry_key(name)
        if key not in self._prefixes:
            return key
        hook = self._extras.get(key, {}).get("identity")
        arg = name[len(key) :]
        return (key, arg if hook is None else hook(arg))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self._has(name)

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

    def __init__(self, kind: str, plugin_group: str | None = None) -> None:
        super().__init__(kind, plugin_group)
        self._configs: dict[str, ConfigEntry[T]] = {}

    def register_config(
        self,
        name: str,
        config_cls: type,
        factory: Callable[..., T],
        preset: object | None = None,
        **extras: Any,
    ) -> None:
        """Register ``name`` built by ``factory(config, name=spec_text)`` from ``config_cls``.

        Args:
            name: the plain name; it stands for ``preset`` (or ``config_cls()``).
            config_cls: a dataclass whose ``__post_init__`` validates its fields.
            factory: builds the thing from a config, receiving the spec text as ``name``.
            preset: a ``config_cls`` instance the name's overrides start from.
            **extras: kept with the entry, as for :meth:`Registry.register`.
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

        self.register(name, plain, **extras)
        self._configs[name] = entry

    def config_class(self, name: str) -> type | None:
        """The config dataclass registered for plain ``name`` (None for a plain entry)."""
        entry = self._configs.get(name)
        return None if entry is None else entry.config_cls

    def _resolve(self, spec: str) -> tuple[str, ConfigEntry[T] | None, object | None]:
        """(name, entry, config) for a spec that is neither a plain name nor a prefix form."""
        try:
            name, overrides = parse_spec(spec)
        except InvalidKeyError as exc:
            raise self._with_hint(exc) from None
        if name not in self._factories and not (self._load_plugins() and name in self._factories):
            raise self.unknown(name)
        entry = self._configs.get(name)
        if entry is None:
            if overrides:
                raise SpecError(
                    f"{spec}: {self.kind} {name!r} takes no options; allowed: (none)"
                )
            return name, None, None
        return name, entry, build_config(entry.config_cls, overrides, entry.base(), spec=spec)

    def _with_hint(self, exc: InvalidKeyError) -> InvalidKeyError:
        """``exc`` with the "did you mean" of the spec's config fields (``hígh_threshold``)."""
        entry = self._configs.get(exc.spec.strip().partition("(")[0].strip())
        if entry is None:
            return exc
        close = difflib.get_close_matches(exc.key, list(field_types(entry.config_cls)), n=3,
                                          cutoff=0.6)
        if not close:
            return exc
        hint = f"; did you mean {' or '.join(map(repr, close))}?"
        return InvalidKeyError(exc.spec, exc.key, hint)

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

    def identity(self, name: str) -> object:
        """``(plain name, resolved config)``: what a decider spec stands for.

        ``rapid``, ``rapid()`` and a spec that sets a field to its preset's value are one
        decider; entries without a config class and ``prefix:`` forms are identified as in
        :meth:`Registry.identity`.

        Raises:
            UnknownNameError: the name is not registered.
            SpecError: the spec is malformed or a field or value is not allowed.
        """
        if self._prefix_of(name) is not None and name not in self._factories:
            return super().identity(name)
        if name in self._factories:
            entry = self._configs.get(name)
            return name if entry is None else (name, entry.base())
        plain, entry, config = self._resolve(name)
        return plain if entry is None else (plain, config)

    def entry_key(self, name: str) -> str:
        """The key ``name`` is registered under; a spec's is its plain name."""
        if self._known(name):
            return super().entry_key(name)
        return self._resolve(name)[0]

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
        except PluginError:
            raise  # a broken plugin is reported, never read as "not registered"
        except ValueError:
            return False
        return True
