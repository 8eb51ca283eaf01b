"""The embedded simulator backend (numpy + OpenCV): the simulator (`simulator`), the bicycle-model
vehicle, the pinhole camera renderer (camera, pinhole, raster), scenery and each condition's layers.
"""
