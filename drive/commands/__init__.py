"""One module per `drive` subcommand, each with `register(subparsers)`.

Modules here are imported at CLI start-up to build the parser, so they import only the standard library
at the top; the work (torch, simulators, …) is imported inside the command's function.
"""
