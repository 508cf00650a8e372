"""The autograd graph, drawn: Graphviz DOT text for the ops that made a tensor, and pictures of it.

    dot = graph.to_dot(loss, params=model)               # before loss.backward(), which frees the graph
    graph.render(dot, "loss.svg")                        # .svg, .png or .pdf: needs Graphviz's `dot` program

A node per op (an Op call: its class, and the shape of its output) and per
leaf (a parameter, named by its module path when ``params`` is given, or a
constant: a tensor that requires no grad, such as the images), and an arrow
from each tensor's maker to each op that used it: the forward pass reads top
to bottom, and backward walks the arrows the other way.

With the :func:`minicnn.autograd.trace` that recorded the forward pass, the ops
are drawn inside boxes (Graphviz "clusters"), one per module that holds other
modules, labelled with its name; ``collapse_depth=1`` draws every top-level
module of the model as a single node instead, which keeps a whole GoogLeNet
readable.
"""
import os
import shutil
import subprocess

from . import backend
from .engine import _topological_order
from .files import write_atomically

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
INSTALL_HINT = ("install Graphviz, which provides it: apt-get install graphviz (Debian, Ubuntu), "
                "brew install graphviz (macOS), conda install graphviz, or https://graphviz.org/download/")
STYLE = {  # node attributes by kind
    "op": 'shape=box, style="rounded,filled", fillcolor="#dde8f4", color="#4c72b0"',
    "module": 'shape=box3d, style=filled, fillcolor="#fbe3c9", color="#dd8452"',
    "parameter": 'shape=ellipse, style=filled, fillcolor="#d5ecd4", color="#55a868"',
    "leaf": 'shape=ellipse, style=filled, fillcolor="#eeeeee", color="#8c8c8c"',
    "output": 'shape=ellipse, style="filled,bold", fillcolor="#f4d4d4", color="#c44e52"',
}


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program, which turns DOT text into a picture, is not installed."""


def _shape(shape):
    return str(tuple(shape))


def _quoted(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _named_parameters(params):
    """(name, tensor) pairs from a Module, a dict name -> tensor, or (name, tensor) pairs."""
    if params is None:
        return []
    if hasattr(params, "named_parameters"):
        return list(params.named_parameters())
    pairs = list(params.items() if isinstance(params, dict) else params)
    if not all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) for pair in pairs):
        raise TypeError("to_dot: params must be a Module, a dict name -> Tensor, or (name, Tensor) pairs")
    return pairs


def _recorded_ops(output):
    if getattr(output, "creator", None) is None:
        raise ValueError("to_dot: output was not made by recorded ops (it requires no grad, is a leaf, "
                         "or was computed under no_grad), so there is no graph to draw")
    try:
        return list(reversed(_topological_order(output.creator)))  # every op after the ops feeding it
    except RuntimeError:
        raise ValueError("to_dot: this graph was freed by backward(); draw it before calling backward()") from None


def _module_path(name):
    """"a.b.c" -> ("a", "a.b", "a.b.c"): the module and the modules holding it."""
    parts = name.split(".") if name else []
    return tuple(".".join(parts[:i + 1]) for i in range(len(parts)))


class _Drawing:
    """Nodes (id -> (label, kind, cluster)), edges and clusters, collected before writing DOT."""

    def __init__(self):
        self.nodes, self.edges, self.edge_set = {}, [], set()

    def node(self, key, label, kind, cluster):
        if key not in self.nodes:
            self.nodes[key] = (label, kind, cluster)
        return key

    def edge(self, source, target):
        if source != target and (source, target) not in self.edge_set:
            self.edge_set.add((source, target))
            self.edges.append((source, target))


def to_dot(output, params=None, trace=None, collapse_depth=None, title=None):
    """DOT text for the autograd graph that produced ``output``.

    Args:
        output: a Tensor made by recorded ops (a loss), before ``backward()`` frees the graph.
        params: names for the parameters: a Module (its ``named_parameters()``), a
            dict name -> Tensor, or (name, Tensor) pairs. Without it a parameter
            is labelled "requires grad".
        trace: the :func:`minicnn.autograd.trace` (given the model) that recorded
            the forward pass: ops are grouped in boxes by the modules that made them.
        collapse_depth: with ``trace``, draw each module this many names deep
            (1: the model's own attributes, such as ``inception3a``) as one node.
        title: a caption for the drawing.
    Returns:
        str: a ``digraph``, for :func:`render` or any Graphviz tool.
    """
    if collapse_depth is not None:
        if trace is None:
            raise ValueError("to_dot: collapse_depth needs trace=, the autograd.trace(model) that recorded the "
                             "forward pass: only it knows which module made each op")
        if not isinstance(collapse_depth, int) or isinstance(collapse_depth, bool) or collapse_depth < 1:
            raise ValueError(f"to_dot: collapse_depth must be an int >= 1, got {collapse_depth!r}")
    ops = _recorded_ops(output)
    named = _named_parameters(params)
    names = {id(tensor): name for name, tensor in named}
    module_of = {op: (trace.module_of(op) or "") if trace is not None else "" for op in ops}
    containers = {prefix for name in module_of.values() for prefix in _module_path(name)[:-1]}

    def place(module_name):
        """(cluster, collapsed module or None) for something made in module ``module_name``."""
        if trace is None:  # no modules known for the ops: no boxes for their parameters either
            return "", None
        path = _module_path(module_name)
        if collapse_depth is not None and len(path) >= collapse_depth:
            return (path[collapse_depth - 2] if collapse_depth > 1 else ""), path[collapse_depth - 1]
        return (module_name if module_name in containers else (path[-2] if len(path) > 1 else "")), None

    output_shapes = {output.creator: output.shape}  # each op's output shape, from the tensors its users hold
    for op in ops:
        for tensor, creator in zip(op.inputs, op.input_creators):
            if creator is not None:
                output_shapes[creator] = tensor.shape
    drawing, keys, collapsed = _Drawing(), {}, {}  # collapsed: node key -> [module, op count, shapes leaving it]
    leaf_keys, group_keys = {}, {}  # id(tensor) -> node key; collapsed module -> node key
    for index, op in enumerate(ops, start=1):
        cluster, group = place(module_of[op])
        if group is None:
            module = module_of[op]
            inner = module.rsplit(".", 1)[-1] if module and module not in containers else ""
            label = "\n".join(filter(None, [inner, type(op).__name__, _shape(output_shapes[op])]))
            keys[op] = drawing.node(f"op{index}", label, "op", cluster)
        else:
            key = group_keys.setdefault(group, f"module{len(group_keys) + 1}")
            keys[op] = drawing.node(key, group, "module", cluster)
            collapsed.setdefault(key, [group, 0, set()])[1] += 1
    for op in ops:
        for tensor, creator in zip(op.inputs, op.input_creators):
            if creator is not None:
                source = keys[creator]
                if source in collapsed and source != keys[op]:
                    collapsed[source][2].add(_shape(tensor.shape))
                drawing.edge(source, keys[op])
                continue
            name = names.get(id(tensor))
            cluster, group = place(name.rsplit(".", 1)[0] if name and "." in name else "")
            if name is not None and group is not None:
                continue  # a collapsed module's parameters are counted in its label
            if id(tensor) not in leaf_keys:
                leaf_keys[id(tensor)] = drawing.node(f"leaf{len(leaf_keys) + 1}", *_leaf_label(tensor, name), cluster)
            drawing.edge(leaf_keys[id(tensor)], keys[op])
    drawing.edge(keys[output.creator], drawing.node("output", f"output\n{_shape(output.shape)}", "output", ""))
    if keys[output.creator] in collapsed:
        collapsed[keys[output.creator]][2].add(_shape(output.shape))
    types = trace.module_types if trace is not None else {}
    for key, (group, count, shapes_out) in collapsed.items():
        values = sum(tensor.numel() for name, tensor in named if name.startswith(group + "."))
        size = f"{count} op{'s' if count != 1 else ''}" + (f", {values:,} parameters" if values else "")
        lines = [f"{group} ({types.get(group, 'module')})", size, *sorted(shapes_out)]
        _, kind, cluster = drawing.nodes[key]
        drawing.nodes[key] = ("\n".join(lines), kind, cluster)
    return _dot_text(drawing, types, title)


def _leaf_label(tensor, name):
    """(label, kind) of a leaf: one that requires grad (a parameter, named if ``params`` knows it),
    or a constant (one that does not, such as the images: backward stops there); a one-value
    constant shows its value."""
    if name is not None or tensor.requires_grad:
        return f"{name or 'requires grad'}\n{_shape(tensor.shape)}", "parameter"
    if tensor.numel() == 1:
        return f"{backend.as_numpy(tensor.array).item():g}", "leaf"
    return f"constant\n{_shape(tensor.shape)}", "leaf"


def _dot_text(drawing, types, title):
    """The drawing as DOT: each cluster a nested ``subgraph cluster_...``, nodes inside their own."""
    members = {}  # cluster -> keys of its nodes
    for key, (_, _, cluster) in drawing.nodes.items():
        members.setdefault(cluster, []).append(key)
    children = {}  # cluster -> its sub-clusters (every cluster's parent exists, up to "")
    for cluster in list(members):
        path = _module_path(cluster)
        for parent, child in zip(("",) + path, path):
            children.setdefault(parent, [])
            if child not in children[parent]:
                children[parent].append(child)
    lines = ["digraph autograd {",
             '  graph [fontname="Helvetica", fontsize=11' + (f", label={_quoted(title)}, labelloc=t" if title else "")
             + "];",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [color="#555555", arrowsize=0.6];']

    def write(cluster, indent):
        for key in members.get(cluster, []):
            label, kind, _ = drawing.nodes[key]
            lines.append(f"{indent}{key} [label={_quoted(label)}, {STYLE[kind]}];")
        for child in children.get(cluster, []):
            label = f"{child} ({types[child]})" if child in types else child
            lines.append(f"{indent}subgraph {_quoted('cluster_' + child)} {{")
            lines.append(f'{indent}  label={_quoted(label)}; style="rounded,dashed"; color="#8c8c8c";')
            write(child, indent + "  ")
            lines.append(f"{indent}}}")

    write("", "  ")
    lines += [f"  {source} -> {target};" for source, target in drawing.edges]
    return "\n".join(lines + ["}"]) + "\n"


def render(dot_text, path, program="dot"):
    """Write ``dot_text`` to ``path``: as it is for .dot or .gv, else drawn by Graphviz as .svg, .png or .pdf.

    The file is written whole or not at all (a temporary file, then a rename).
    Raises:
        GraphvizNotFoundError: ``program`` (Graphviz's ``dot``) is not installed.
        ValueError: an extension other than those above.
    """
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix in (".dot", ".gv"):
        return write_atomically(path, dot_text.encode())
    if suffix not in FORMATS:
        raise ValueError(f"render: path must end in .svg, .png, .pdf, .dot or .gv, got {str(path)!r}")
    executable = shutil.which(program)
    if executable is None:
        raise GraphvizNotFoundError(f"drawing {path} needs Graphviz's `{program}` program, which is not on "
                                    f"PATH; {INSTALL_HINT}. The DOT text itself needs nothing: save it as .dot")
    result = subprocess.run([executable, f"-T{FORMATS[suffix]}"], input=dot_text.encode(), capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"render: {program} failed (exit {result.returncode}): "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return write_atomically(path, result.stdout)
