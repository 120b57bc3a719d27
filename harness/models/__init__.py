"""Models: where they come from (files, builtin graphs), and the inputs fed to them.

``sources`` resolves a suite's model to a file and reads its inputs, ``builtin`` builds the
small graphs the quick start and tests use, ``inputs`` generates feeds from a recorded seed.
"""
