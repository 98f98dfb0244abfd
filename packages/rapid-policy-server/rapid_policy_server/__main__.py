"""``python -m rapid_policy_server``: the ``rapid-policy-server`` command."""

import sys

from rapid_policy_server.cli import main

sys.exit(main())
