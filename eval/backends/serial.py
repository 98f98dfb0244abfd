"""Episodes one after another in this process (``--workers 1``, the default)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from rapid_env.eval.execute import EpisodeRunner
from rapid_env.eval.jobs import EpisodeJob


class SerialBackend:
    """Runs jobs in order in this process, reusing controllers between jobs of one environment."""

    name = "local"

    def __init__(self, token_file: str | None = None, imports: Sequence[str] = ()) -> None:
        self._runner = EpisodeRunner(token_file=token_file, imports=imports)

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[dict[str, Any]]:
        """Yield each job's record as soon as its episode ends."""
        for job in jobs:
            yield self._runner.run(job)

    def close(self) -> None:
        """Release the kept controllers."""
        self._runner.close()
