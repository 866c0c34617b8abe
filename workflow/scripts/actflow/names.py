"""Names, labels and the canonical order of activations (no torch: figures use it)."""

ORDER = ["sigmoid", "relu", "leaky_relu", "gelu", "tanh", "silu", "elu", "softplus"]
LABELS = {
    "sigmoid": "Sigmoid",
    "relu": "ReLU",
    "leaky_relu": "Leaky ReLU",
    "gelu": "GELU",
    "tanh": "tanh",
    "silu": "SiLU",
    "elu": "ELU",
    "softplus": "Softplus",
}


def label(name: str) -> str:
    return LABELS.get(name, name)


def ordered(names) -> list[str]:
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
