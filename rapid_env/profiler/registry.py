"""Which function counts which profile: the builders the ``arch_*`` modules register.

Adding a profile is one builder function decorated with :func:`profile_builder` in an ``arch_*``
module listed in :data:`rapid_env.profiler.write.BUILDER_MODULES`; it must only return an
:class:`~rapid_env.cost.profiles.ArchProfile`, and ``--write`` picks it up (the runtime then knows
the name from the cache). The builders import torch only when called, so registering them is cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from rapid_env.cost.profiles import ArchProfile

Builder = Callable[[], ArchProfile]

BUILDERS: dict[str, Builder] = {}
"""Profile name -> builder that counts it from the architecture (slow; needs torch)."""


def profile_builder(name: str) -> Callable[[Builder], Builder]:
    """Register a builder function under ``name`` (for ``--write``)."""

    def decorate(builder: Builder) -> Builder:
        if name in BUILDERS:
            raise ValueError(f"profile builder {name!r} is already registered")
        BUILDERS[name] = builder
        return builder

    return decorate
