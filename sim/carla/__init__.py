"""The CARLA backend (optional extra `carla`): the simulator over a CARLA server in synchronous mode,
its connection, world, sensors, ego vehicle, weather and route planner. `carla` itself is imported
lazily, in `lazy_import` only.
"""
