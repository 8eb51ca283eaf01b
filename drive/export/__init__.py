"""ONNX export: the one-step graphs (`graphs`), the export pipeline with metadata (`pipeline`),
PyTorch-vs-onnxruntime parity (`parity`), fp16/int8 variants (`variants`), graph clean-up (`optimize`).
"""
