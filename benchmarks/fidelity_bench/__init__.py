"""The parts of ``benchmarks/fidelity.py`` (measured vs modelled link times), one job a module.

* :mod:`.protocol`: what the benchmark's processes say to each other (the entry script they run,
  the echo method's name, the delay line's statistics line);
* :mod:`.relay`: the user-space TCP relay that delays what it forwards (``--delay relay``);
* :mod:`.delay_line`: the kernel delay line, an NFQUEUE reader over raw netlink (``--delay
  kernel``), and the ``iptables`` rules that feed it;
* :mod:`.echo`: the echo gRPC server (real-sized replies at once, for payloads ``rapid-serve``
  would refuse);
* :mod:`.shaper`: bandwidth on ``lo`` with ``tc`` (htb + one tbf per direction), and a thread that
  follows a trace's rates in wall time;
* :mod:`.model`: the link model's side, what a fresh link predicts for a request;
* :mod:`.children`: the child processes (own process group, stdout read by a thread) and the
  handle that drives the delay line;
* :mod:`.bench`: one row of requests (a session) and the raw-TCP check of ``tbf``;
* :mod:`.run`: the whole run inside the network namespace, and its table.

``benchmarks/fidelity.py`` is the command (flags, the namespace, the hidden child modes); the
explanation of the method is its docstring and ``docs/fidelity.md``.
"""
