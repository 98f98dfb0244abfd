"""Many robots in one virtual clock, sharing a cloud of GPUs and a wireless cell (docs/fleet.md).

``queue.py`` (the cloud's queue and batches), ``cell.py`` (the cell's airtime), ``shared.py``
(both advanced together in time order), ``transport.py`` (a robot's requests onto them),
``loop.py`` (the lockstep loop), ``replay.py`` (recorded requests, no physics).
"""
