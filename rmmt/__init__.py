"""Residual multimodal Transformer for expression-EEG fusion (Jin et al., CAAI TRIT 9(5), 2024).

Face video (ResNet50 per frame + TCN) and EEG relative band powers (TCN) fused by a multimodal
Transformer E->F with ReLU attention and a residual connection, trained with CCC + alpha * KD
(L1) loss, regressing continuous valence at 4 Hz on MAHNOB-HCI; with every baseline and
ablation of the paper's Tables 3-7.

Modules: ``data`` (readers + synthetic writer), ``features`` (EEG PSD sequence), ``pipeline``
(raw files -> trials, cached), ``face`` (backbone, cached per-step embeddings), ``layers``,
``losses``, ``models``, ``config`` (the choices the paper leaves open), ``task`` (the experiment
runner's task), ``tuning`` (keras-tuner search), ``figures`` (Figs. 7-9).
"""
