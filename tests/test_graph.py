"""minicnn.graph: the autograd graph as Graphviz DOT text, and drawing it with Graphviz's `dot`.

`dot` is not a dependency: the drawing path is tested with a stand-in `dot` script on PATH
(the real program is exercised by docs/figures.py), and its absence must give one clear error.
"""
import os
import re
import stat
import sys

import numpy as np
import pytest

import minicnn
from minicnn import Tensor, autograd, graph, nn
from minicnn.engine import _topological_order
from helpers import tensor

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", (.*)\];$')
EDGE = re.compile(r"^\s*(\w+) -> (\w+);$")
CLUSTER = re.compile(r'^\s*subgraph "cluster_([^"]+)" \{$')


def parse(dot):
    """{node: (label lines, cluster path)} and the set of edges, read back from DOT text."""
    nodes, edges, clusters = {}, set(), []
    for line in dot.splitlines():
        if CLUSTER.match(line):
            clusters.append(CLUSTER.match(line).group(1))
        elif line.strip() == "}" and clusters:
            clusters.pop()
        elif NODE.match(line):
            key, label, _ = NODE.match(line).groups()
            nodes[key] = (label.split("\\n"), clusters[-1] if clusters else "")
        elif EDGE.match(line):
            edges.add(EDGE.match(line).groups())
    assert dot.count("{") == dot.count("}") and dot.startswith("digraph autograd {")
    return nodes, edges


def by_label(nodes):
    return {"/".join(label): key for key, (label, _) in nodes.items()}


def test_a_small_expression_gives_one_node_per_op_and_leaf(device):
    w = tensor(np.array([1.0, 2.0, 3.0]), device, requires_grad=True)
    x = tensor(np.array([4.0, 5.0, 6.0]), device)
    y = (w * x).sum() * 0.5
    nodes, edges = parse(graph.to_dot(y, params={"w": w}))
    keys = by_label(nodes)
    assert sorted(keys) == ["0.5", "MulFunction/()", "MulFunction/(3,)", "SumFunction/()", "constant/(3,)",
                            "output/()", "w/(3,)"]
    expected = {("w/(3,)", "MulFunction/(3,)"), ("constant/(3,)", "MulFunction/(3,)"),
                ("MulFunction/(3,)", "SumFunction/()"), ("SumFunction/()", "MulFunction/()"),
                ("0.5", "MulFunction/()"), ("MulFunction/()", "output/()")}
    assert edges == {(keys[a], keys[b]) for a, b in expected}
    unnamed = by_label(parse(graph.to_dot(y))[0])
    assert "requires grad/(3,)" in unnamed  # without params a parameter is still drawn, unnamed


def tiny_googlenet():
    from models.googlenet import GoogLeNet
    minicnn.manual_seed(0)
    return GoogLeNet(num_classes=10, stem="cifar", norm="bn", width=0.0625)


def googlenet_loss_traced(model):
    from models.googlenet import googlenet_loss
    with autograd.trace(model) as ops:
        loss = googlenet_loss(model(Tensor(np.ones((2, 3, 32, 32), np.float32))), np.array([1, 2]))
    return loss, ops


def test_every_op_and_every_parameter_of_googlenet_is_a_node_named_by_its_module():
    model = tiny_googlenet()
    loss, ops = googlenet_loss_traced(model)
    nodes, edges = parse(graph.to_dot(loss, params=model, trace=ops))
    op_nodes = [key for key in nodes if key.startswith("op")]
    assert len(op_nodes) == len(_topological_order(loss.creator))
    parameters = {label[0] for label, _ in nodes.values() if label[0] in dict(model.named_parameters())}
    assert parameters == set(dict(model.named_parameters()))  # training: the aux heads' too
    # the ops sit in boxes for the modules holding them, labelled by the module that made them
    conv_in_3a = [(label, cluster) for label, cluster in nodes.values()
                  if label[1:2] == ["Conv2dFunction"] and cluster.startswith("inception3a.branch2")]
    assert [(label[0], cluster) for label, cluster in conv_in_3a] == [
        ("conv", "inception3a.branch2.0"), ("conv", "inception3a.branch2.1")]
    concat = [cluster for label, cluster in nodes.values() if label[0] == "ConcatFunction"]
    assert concat[:2] == ["inception3a", "inception3b"]  # called by the block itself
    assert 'label="inception3a (Inception)"' in graph.to_dot(loss, params=model, trace=ops)
    assert all(source in nodes and target in nodes for source, target in edges)
    untraced, _ = parse(graph.to_dot(loss, params=model))  # named parameters, no boxes without the trace
    assert {cluster for _, cluster in untraced.values()} == {""} and len(untraced) == len(nodes)


def test_collapse_depth_draws_each_top_level_module_as_one_node():
    model = tiny_googlenet()
    loss, ops = googlenet_loss_traced(model)
    nodes, edges = parse(graph.to_dot(loss, params=model, trace=ops, collapse_depth=1))
    modules = {label[0].split()[0]: (label, key) for key, (label, _) in nodes.items() if key.startswith("module")}
    ran = [name for name, module in model.named_children()]  # every top-level module runs in training
    assert sorted(modules) == sorted(ran)
    label, key = modules["inception3a"]
    parameters = nn.count_parameters(model.inception3a)
    assert label == ["inception3a (Inception)", f"14 ops, {parameters:,} parameters",  # 6 conv, 6 BN+ReLU, pool, concat
                     str((2, model.inception3a.out_channels, 32, 32))]
    stem, block = modules["stem"][1], modules["inception3a"][1]
    assert (stem, block) in edges and (modules["inception4a"][1], modules["aux1"][1]) in edges
    assert not [label for label, _ in nodes.values() if "." in label[0] and "weight" in label[0]]  # params folded in
    deeper, _ = parse(graph.to_dot(loss, params=model, trace=ops, collapse_depth=2))
    branch = [(label[0], cluster) for key, (label, cluster) in deeper.items() if label[0].startswith("inception3a.")]
    kinds = ["ConvBNReLU", "Sequential", "Sequential", "Sequential"]
    assert sorted(branch) == [(f"inception3a.branch{i} ({kind})", "inception3a") for i, kind in enumerate(kinds, 1)]


def test_to_dot_errors_say_what_to_do():
    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(ValueError, match="collapse_depth needs trace="):
        graph.to_dot(y, collapse_depth=1)
    with autograd.trace() as ops:
        z = (x * 3).sum()
    with pytest.raises(ValueError, match="collapse_depth must be an int >= 1, got 0"):
        graph.to_dot(z, trace=ops, collapse_depth=0)
    with pytest.raises(ValueError, match="there is no graph to draw"):
        graph.to_dot(x)
    y.backward()
    with pytest.raises(ValueError, match="freed by backward\\(\\); draw it before calling backward"):
        graph.to_dot(y)
    with pytest.raises(TypeError, match="params must be a Module, a dict name -> Tensor"):
        graph.to_dot(z, params=[x])


# -- drawing with Graphviz ----------------------------------------------------------------------------
def fake_dot(folder):
    """A `dot` stand-in: prints its format argument, then the DOT text it was given."""
    path = folder / "dot"
    path.write_text(f"#!{sys.executable}\nimport sys\n"
                    "sys.stdout.write('drawn with ' + sys.argv[1] + '\\n' + sys.stdin.read())\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def small_dot():
    x = Tensor(np.ones(2), requires_grad=True)
    return graph.to_dot((x * 2).sum())


def test_render_runs_dot_with_the_format_of_the_suffix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_dot(tmp_path)
    text = small_dot()
    for name, fmt in (("g.svg", "svg"), ("g.PNG", "png"), ("g.pdf", "pdf")):
        assert graph.render(text, tmp_path / name) == str(tmp_path / name)
        assert (tmp_path / name).read_text() == f"drawn with -T{fmt}\n" + text
    graph.render(text, tmp_path / "g.dot")  # DOT text needs no program
    assert (tmp_path / "g.dot").read_text() == text
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary files left


def test_render_without_graphviz_is_one_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(graph.GraphvizNotFoundError) as error:
        graph.render(small_dot(), tmp_path / "g.svg")
    assert "needs Graphviz's `dot` program, which is not on PATH" in str(error.value)
    assert "apt-get install graphviz" in str(error.value) and "brew install graphviz" in str(error.value)
    assert os.listdir(tmp_path) == []


def test_render_reports_a_failing_dot_and_a_wrong_suffix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "dot").write_text('#!/bin/sh\necho "syntax error in line 3" >&2\nexit 1\n')
    (tmp_path / "dot").chmod(0o755)
    with pytest.raises(RuntimeError, match="render: dot failed \\(exit 1\\): syntax error in line 3"):
        graph.render(small_dot(), tmp_path / "g.png")
    with pytest.raises(ValueError, match="path must end in .svg, .png, .pdf, .dot or .gv, got '.*g.jpg'"):
        graph.render(small_dot(), tmp_path / "g.jpg")
    assert sorted(os.listdir(tmp_path)) == ["dot"]
