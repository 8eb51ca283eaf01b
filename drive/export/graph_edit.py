"""Edits of an exported ONNX model that keep its contract: dropping outputs, re-stamping its digest.

onnxruntime runs every node of a graph on each call, whichever outputs the caller asks for, so a
diagnostics graph driven without saliency would still compute the feature maps' channel means (a fifth
of the int8 graph's time). `without_outputs` removes such outputs with every node and weight that only
they needed; what remains computes the other outputs with the very same nodes and weights.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import onnx

from drive.onboard.contract import MetaKey, model_digest


def stamp_digest(model: onnx.ModelProto) -> None:
    """Record the sha256 of `model`'s graph and weights in its metadata (checked on load), in place."""
    props = [p for p in model.metadata_props if p.key != MetaKey.MODEL_DIGEST]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    model.metadata_props.add(key=MetaKey.MODEL_DIGEST, value=model_digest(model.SerializeToString()))


def without_outputs(model: onnx.ModelProto, drop: Collection[str]) -> onnx.ModelProto:
    """A copy of `model` without the graph outputs `drop`, the nodes only they needed, and those nodes'
    weights; the metadata's `diagnostic_outputs` no longer names them, and the digest is re-stamped.

    Raises:
        ValueError: `drop` names an output the graph lacks, or would leave it with none, or the graph
            has subgraphs (If/Loop: their inputs are implicit, so liveness is not followed into them).
    """
    graph = model.graph
    names = [o.name for o in graph.output]
    unknown = sorted(set(drop) - set(names))
    if unknown or set(names) <= set(drop):
        raise ValueError(f"without_outputs: cannot drop {sorted(drop)} from outputs {names}")
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in graph.node
        for a in n.attribute
    ):
        raise ValueError("without_outputs: graphs with subgraphs (If, Loop, Scan) are not supported")
    needed = {name for name in names if name not in drop}
    kept_nodes = []
    for node in reversed(graph.node):  # the nodes are in topological order
        if any(out in needed for out in node.output):
            kept_nodes.append(node)
            needed.update(i for i in node.input if i)
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    g = edited.graph
    del g.node[:]
    g.node.extend(reversed(kept_nodes))
    for field in (g.output, g.value_info):
        kept = [v for v in field if v.name in needed]
        del field[:]
        field.extend(kept)
    initializers = [t for t in g.initializer if t.name in needed]
    del g.initializer[:]
    g.initializer.extend(initializers)
    for prop in edited.metadata_props:
        if prop.key == MetaKey.DIAGNOSTIC_OUTPUTS:
            prop.value = json.dumps([n for n in json.loads(prop.value) if n not in drop])
    stamp_digest(edited)
    return edited
