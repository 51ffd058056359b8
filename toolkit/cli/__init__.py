"""The ``recur`` command line.

Each module in this package that defines ``COMMAND``, ``HELP``, ``configure(parser)`` and
``run(args) -> int`` is a subcommand; ``main`` discovers them, so adding a command never means
editing a central list. Heavy imports belong inside ``run`` so ``recur --help`` stays fast.
"""
