"""Fleet runs on Ray: one suite, many machines, each case on a node that really has its target.

A node (``harness node start``) advertises one Ray resource per target it can run, from the
same probe as ``harness doctor``, and a single benchmark slot, so it never measures two cases at
once. ``harness run SUITE --cluster ADDRESS`` makes each case a Ray task that needs its target's
resource and the slot; the task runs the case exactly as a local run does (isolated worker
processes in the node's runtimes, the same honest-numbers checks) and returns its record, which
the driver writes as it arrives. Ray is an extra: nothing here is imported by a local run.
"""
