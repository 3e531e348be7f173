"""Emotion recognition with pre-trained Transformers using multimodal signals (Vazquez-Rodriguez et al., ACII 2022).

Will hold: a 1D-CNN + Transformer EEG encoder pre-trained by masked value prediction on
unlabeled EEG corpora, fine-tuned on AMIGOS (ECG + 10 EEG channels, 128 Hz) for high/low
arousal and valence with 10-fold CV (mean ± 95 % CI), and a late-fusion EEG+ECG model.
Not implemented yet: this package currently contains no code.
"""
