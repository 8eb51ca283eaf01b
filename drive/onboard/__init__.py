"""The onboard runtime: an exported model driven with onnxruntime alone (`runtime`), and the metadata
contract that export and runtime share (`contract`). Numpy and onnxruntime only, nothing else of the
project: copy the folder to the board.
"""
