"""The closed loop: simulator ↔ driver at the control rate (`loop`), the drivers (expert, policy
runner), per-episode metrics, and the jobs built on it: recording expert drives (`record`), previews,
the exported model driving the simulator (`onboard_drive`).
"""
