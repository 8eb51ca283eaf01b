"""Orchestration: the `drive` CLI, configs, closed loop, record, train, evaluate, export, onboard runtime.

Kept import-light: importing `drive` pulls in neither torch nor carla (the onboard runtime and the CLI's
start-up depend on it); each command imports its heavy modules when it runs.
"""

__version__ = "0.1.0"
