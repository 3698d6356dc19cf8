"""The doodle CNN: three 3x3 conv blocks and two dense layers, about 4.5 M multiply-accumulates per image.

Only ops the Swift engine runs: Conv, Relu, MaxPool, Flatten, Gemm (BatchNorm is folded away before export).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

NUM_CLASSES = 345


class DoodleNet(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, widths: tuple[int, int, int] = (32, 40, 96),
                 hidden: int = 256, dropout: float = 0.3) -> None:
        super().__init__()
        c1, c2, c3 = widths

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, c1), *block(c1, c2), *block(c2, c3))  # 28 -> 14 -> 7 -> 3
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c3 * 9, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x 1 x 28 x 28 floats in 0..1 (pixel / 255). Returns logits."""
        return self.classifier(self.features(x))


def load_checkpoint(path: Path) -> tuple[DoodleNet, dict]:
    """The DoodleNet a training checkpoint holds (its architecture from the checkpoint's arguments), in eval mode,
    and the checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    a = state["args"]
    model = DoodleNet(len(state["categories"]), widths=tuple(a.get("widths") or (32, 40, 96)),
                      hidden=a.get("hidden", 256), dropout=a.get("dropout", 0.3))
    model.load_state_dict(state["model"])
    return model.eval(), state


def load_shipped_model(path: Path) -> DoodleNet:
    """A float DoodleNet holding the dequantized weights of a shipped int8 model (``model.onnx``), in eval mode: a
    teacher to distil from when the checkpoint it was made from is not at hand. Each BatchNorm is the identity with
    the folded bias, and the softmax temperature baked in at shipping (``doodle.temperature``) is taken back out, so
    the logits are the trained ones. Only the weights are int8; activations stay float."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    meta = {p.key: p.value for p in m.metadata_props}
    temperature = float(meta.get("doodle.temperature", "1"))
    layers = sorted({n.split(".weight_quantized")[0] for n in init if n.endswith(".weight_quantized")},
                    key=lambda n: int(n.split(".")[1]))

    def dequantized(values: str, scale: str, zero_point: str) -> torch.Tensor:
        q = init[values].astype("float64")
        per_axis = (1,) * (q.ndim - 1)
        if zero_point in init:
            q = q - init[zero_point].astype("float64").reshape(-1, *per_axis)
        return torch.tensor(q * init[scale].astype("float64").reshape(-1, *per_axis), dtype=torch.float32)

    weights = [dequantized(f"{n}.weight_quantized", f"{n}.weight_scale", f"{n}.weight_zero_point") for n in layers]
    biases = [dequantized(f"{n}.bias_quantized", f"{n}.bias_quantized_scale", f"{n}.bias_quantized_zero_point")
              for n in layers]
    convs, dense = weights[:3], weights[3:]
    model = DoodleNet(dense[1].shape[0], widths=tuple(w.shape[0] for w in convs), hidden=dense[0].shape[0])
    conv_layers = [c for c in model.features if isinstance(c, nn.Conv2d)]
    norms = [b for b in model.features if isinstance(b, nn.BatchNorm2d)]
    linears = [c for c in model.classifier if isinstance(c, nn.Linear)]
    with torch.no_grad():
        for conv, bn, w, b in zip(conv_layers, norms, convs, biases[:3]):
            conv.weight.copy_(w)
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for linear, w, b in zip(linears, dense, biases[3:]):
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        linears[-1].weight.mul_(temperature)
        linears[-1].bias.mul_(temperature)
    return model.eval()


def load_model(path: Path) -> DoodleNet:
    """A trained DoodleNet from a training checkpoint (``.pt``) or a shipped int8 model (``.onnx``), in eval mode."""
    return load_shipped_model(path) if Path(path).suffix == ".onnx" else load_checkpoint(path)[0]


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates for one 28x28 image (conv and linear layers)."""
    macs = 0
    hooks = []

    def conv_hook(m, _inp, out):
        nonlocal macs
        macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, _inp, _out):
        nonlocal macs
        macs += m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs


def fold_batchnorm(model: DoodleNet) -> nn.Sequential:
    """An inference copy with every Conv+BatchNorm folded into one biased Conv, dropout removed."""
    layers: list[nn.Module] = []
    mods = list(model.features)
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
            bn = mods[i + 1]
            std = torch.sqrt(bn.running_var + bn.eps)
            w = m.weight * (bn.weight / std).reshape(-1, 1, 1, 1)
            b = bn.bias - bn.running_mean * bn.weight / std
            if m.bias is not None:
                b = b + m.bias * bn.weight / std
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=True)
            conv.weight.data.copy_(w.detach())
            conv.bias.data.copy_(b.detach())
            layers.append(conv)
            i += 2
            continue
        layers.append(m)
        i += 1
    layers += [m for m in model.classifier if not isinstance(m, nn.Dropout)]
    return nn.Sequential(*layers).eval()
