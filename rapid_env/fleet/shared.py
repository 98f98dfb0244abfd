"""What a fleet shares, simulated together in time order: the cloud queue and the cell.

A transfer through the cell that finishes lets a request reach the cloud; a batch the cloud
starts books its requests' downloads on the cell. Either can change what the other does next,
so both are advanced as one discrete-event simulation: always the earlier of the cell's next
event and the cloud's next batch start, up to the time the fleet loop says every request is
known (the next tick).
"""

from __future__ import annotations

import math

from rapid_env.fleet.cell import WirelessCell
from rapid_env.fleet.queue import CloudQueue

__all__ = ["SharedResources"]


class SharedResources:
    """The fleet's cloud queue and, optionally, its wireless cell."""

    def __init__(self, cloud: CloudQueue, cell: WirelessCell | None = None) -> None:
        self.cloud = cloud
        self.cell = cell

    def advance(self, until: float) -> None:
        """Process every event before ``until``, earliest first.

        On a tie the cell's goes first: a transfer that ends at the moment a batch starts is in
        time for it.
        """
        while True:
            cell_t = self.cell.next_event() if self.cell is not None else math.inf
            cloud_t = self.cloud.next_start()
            if min(cell_t, cloud_t) >= until:
                return
            if cell_t <= cloud_t:
                assert self.cell is not None
                self.cell.step()
            else:
                self.cloud.start_next()

    def drain(self) -> None:
        """Process everything left (nothing more will be sent)."""
        self.advance(math.inf)
