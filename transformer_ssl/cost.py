"""Estimated compute of ``make amigos PROFILE=paper``: FLOPs per stage, counted from the model's shapes.

``python -m transformer_ssl.cost [--tflops 100]`` prints the table; ``make bench`` shows its total.

Counting: a multiply-add is 2 FLOPs; a training step costs 3x the forward pass (forward + backward
for activations and weights); layer norms, softmax, activations and the optimizer are left out (a few
%). Forward pass of one segment of T samples (T' = T + 1 with the CLS token), hidden d, FFN f:

    CNN           sum over layers 2 T k C_in C_out
    Transformer   per layer: 2 T' 4 d^2 (Q, K, V, output) + 4 T'^2 d (scores, weighted sum) + 4 T' d f
    MVP head      2 T (d 128 + 128 C);  recognizer head: negligible

Sizes of the paper protocol (the defaults below): ~23,400 AMIGOS segments (65 h of 10 s), 90 % of
them in each fold's training part, ~195 h of external EEG (70,200 segments) in every fold's EEG
pre-training corpus, 10 folds; pre-training 500 epochs of both encoders per fold, fine-tuning 100
epochs of 4 recognizers per fold (EEG, ECG x arousal, valence; Table 1's scratch rows add 2 more),
fusion negligible. GPU-hours at a stated sustained throughput (float32; not measured here).
"""
from __future__ import annotations

import argparse

from transformer_ssl.models import ENCODER_DEFAULTS


def forward_flops(n_channels: int, samples: int = 1280, mvp_head: bool = False, **encoder) -> float:
    """FLOPs of one forward pass of the encoder (+ the MVP head) on one segment (module docstring)."""
    e = {**ENCODER_DEFAULTS, **encoder}
    flops, c_in = 0.0, n_channels
    for k, c_out in zip(e["kernels"], e["filters"]):
        flops += 2.0 * samples * k * c_in * c_out
        c_in = c_out
    d, f, t = e["hidden"], e["ffn_dim"], samples + 1
    flops += e["num_layers"] * (2.0 * t * 4 * d * d + 4.0 * t * t * d + 4.0 * t * d * f)
    if mvp_head:
        flops += 2.0 * samples * (d * 128 + 128 * n_channels)
    return flops


def paper_cost(amigos_segments: int = 23_400, corpus_segments: int = 70_200, folds: int = 10,
               train_share: float = 0.9, pretrain_epochs: int = 500, finetune_epochs: int = 100,
               recognizers: int = 4, shared_pretraining: bool = False, ecg_corpus_segments: int = 82_800) -> dict:
    """FLOPs per stage of the paper protocol (see the module docstring).

    shared_pretraining: one pre-training per encoder on the external corpora only, reused by every
    fold (``--pretrain shared``), instead of one per fold; the ECG encoder then needs an external ECG
    corpus (``$ECG_CORPORA_ROOT``; ``ecg_corpus_segments`` 10-s segments, default [15]'s ~230 h).
    """
    train = amigos_segments * train_share
    eeg, ecg = forward_flops(10, mvp_head=True), forward_flops(1, mvp_head=True)
    if shared_pretraining:
        pre_eeg = 3 * eeg * corpus_segments * pretrain_epochs
        pre_ecg = 3 * ecg * ecg_corpus_segments * pretrain_epochs
    else:
        pre_eeg = 3 * eeg * (corpus_segments + train) * pretrain_epochs * folds
        pre_ecg = 3 * ecg * train * pretrain_epochs * folds
    per_rec = (forward_flops(10) + forward_flops(1)) / 2
    finetune = 3 * per_rec * train * finetune_epochs * recognizers * folds
    stages = {"EEG pre-training": pre_eeg, "ECG pre-training": pre_ecg, "fine-tuning": finetune}
    total = sum(stages.values())
    return {"stages": stages, "total": total, "pretraining_share": (pre_eeg + pre_ecg) / total}


def render(cost: dict, tflops: float) -> str:
    lines = ["| stage | EFLOP | share | GPU-hours at %g TFLOP/s |" % tflops, "|---|---|---|---|"]
    for name, f in cost["stages"].items():
        lines.append(f"| {name} | {f / 1e18:.2f} | {f / cost['total']:.0%} | {f / (tflops * 1e12) / 3600:.1f} |")
    lines.append(f"| total | {cost['total'] / 1e18:.2f} | 100% | {cost['total'] / (tflops * 1e12) / 3600:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="estimated compute of make amigos PROFILE=paper")
    ap.add_argument("--tflops", type=float, default=100.0, help="sustained float32 throughput of the GPU")
    a = ap.parse_args(argv)
    print("Per-fold pre-training (the paper's protocol):")
    print(render(paper_cost(), a.tflops))
    print("\nOne shared pre-training on the external corpora (--pretrain shared; ECG: [15]'s ~230 h via "
          "ECG_CORPORA_ROOT):")
    print(render(paper_cost(shared_pretraining=True), a.tflops))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
