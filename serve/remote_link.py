"""The ``remote:<host:port>`` link: registered in the core's link registry with its transport.

This is the one place that knows a ``remote:`` link needs a remote transport. Its entry in
:data:`~rapid_env.link.LINKS` carries a :class:`~rapid_env.link.LinkTransport` whose hooks the
CLI, the preflight and the episode runner ask (:func:`~rapid_env.link.link_transport`): the form
is checked without loading anything, the server is asked once before a sweep what it runs, and
episodes get a controller whose requests run the policy's cloud half on that server. Importing
this module registers it (the evaluation layer's modules that take link specs import it).
"""

from __future__ import annotations

from rapid_env.link import LinkTransport, register_transport_link
from rapid_env.serve.transport import (
    REMOTE_FORM,
    REMOTE_PREFIX,
    check_remote,
    remote_address,
    remote_controller,
)

REMOTE_TRANSPORT = LinkTransport(
    check=remote_address, preflight=check_remote, controller=remote_controller
)

register_transport_link(REMOTE_PREFIX, REMOTE_TRANSPORT, form=REMOTE_FORM)
