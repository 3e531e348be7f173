"""Residual multimodal Transformer for expression-EEG fusion (Jin et al., CAAI TRIT 2024).

Will hold: face-video (ResNet50 + TCN) and EEG band-power (TCN) encoders fused by a
residual multimodal Transformer with knowledge distillation, regressing continuous valence
(4 Hz) on MAHNOB-HCI, with every baseline of the paper's tables.
Not implemented yet: this package currently contains no code.
"""
