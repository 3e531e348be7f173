"""FLOPs per sample of the three packages' main models (:mod:`experiments.flops`): counted from the
shapes and, on JAX (``KERAS_BACKEND=jax``), XLA's own count beside it, as a Markdown table.

    python benchmarks/flops_models.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout first, ahead of any installed copy of the packages
    sys.path.insert(0, str(ROOT))

from experiments.flops import count, xla_flops  # noqa: E402  (after the path setup above)


def main_models() -> dict:
    """The three packages' main models as the benches train them: name -> built model."""
    from attx_keras.models import build_model as attx
    from rmmt.models import build_model as rmmt
    from transformer_ssl.models import build_pretrain_model, build_recognizer

    return {"AttX ECG<->EDA s12 (2 x 2560 samples)": attx(fusion="attx", direction="both", stages=(1, 2)),
            "transformer_ssl EEG recognizer (10 x 1280)": build_recognizer(10),
            "transformer_ssl EEG MVP pre-training model (10 x 1280)": build_pretrain_model(10),
            "RMMT (32 steps, face 2048 + EEG 192)": rmmt("rmmt", input_seconds=8)}


def main() -> int:
    """``python benchmarks/flops_models.py``: per main model, FLOPs per sample counted from shapes and, on
    JAX (``KERAS_BACKEND=jax``), XLA's count beside it."""
    import keras

    on_jax = keras.backend.backend() == "jax"
    print("| model | forward MFLOP/sample | train MFLOP/sample (3x) | XLA forward | XLA train | XLA train / forward |")
    print("|---|---|---|---|---|---|")
    for name, model in main_models().items():
        ours = count(model)
        xla = xla_flops(model) if on_jax else None
        cells = [f"{ours['forward'] / 1e6:.1f}", f"{ours['train'] / 1e6:.1f}"]
        cells += ([f"{xla['forward'] / 1e6:.1f} ({ours['forward'] / xla['forward']:.1%})",
                   f"{xla['train'] / 1e6:.1f} ({ours['train'] / xla['train']:.1%})",
                   f"{xla['train'] / xla['forward']:.2f}"] if xla else ["(JAX only)"] * 3)
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
