"""A policy object for ``rapid-policy-server --object``: holds still, one chunk of zeros."""

import numpy as np


class Hold:
    """Meta-World's 4-D actions, all zero, 8 per reply."""

    def predict(self, obs: dict[str, object]) -> np.ndarray:
        return np.zeros((8, 4), np.float32)


def make_hold() -> Hold:
    return Hold()
