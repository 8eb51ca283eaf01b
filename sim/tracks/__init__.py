"""Roads both backends drive: the `Track` centre line, the generated presets (`track_gen`), lane geometry
(where the car is on the road, progress) and the OpenDRIVE export (`xodr`) CARLA builds the same roads from.
"""
