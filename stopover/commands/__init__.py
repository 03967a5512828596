"""CLI subcommands, one module each.

Every module here defines `NAME` (the subcommand), `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int`. `stopover.cli` discovers them
with pkgutil, so adding a subcommand adds a file and edits nothing else.
Modules must import heavy libraries (torch, transformers) inside `run`, never
at import time, so `stopover --help` and `stopover tasks` stay fast.
"""
