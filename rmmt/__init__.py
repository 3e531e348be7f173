"""Residual multimodal Transformer for expression-EEG fusion (Jin et al., CAAI TRIT 9(5), 2024).

Face video (ResNet50 per frame + TCN) and EEG relative band powers (TCN) fused by a multimodal
Transformer E->F with ReLU attention and a residual connection, trained with CCC + alpha * KD
(L1) loss, regressing continuous valence at 4 Hz on MAHNOB-HCI; with every baseline and
ablation of the paper's Tables 3-7.

Modules
-------
data             readers (mahnob, bdf, video) and the synthetic writer (synthetic, synthetic_signals)
features         EEG relative band-power sequence at 4 Hz
pipeline         raw files -> trials (EEG features, face crops, valence), cached
face             the face network and its cached per-step embeddings
layers, losses   TCN, ReLU attention, Transformer blocks; CCC and KD losses (eqs. 18-21)
models           RMMT and every baseline and ablation of Tables 3-7
config           the choices the paper leaves open (ModelConfig, TrainConfig, search space)
windows          windows of label steps; whole-trial prediction from overlapping windows
task             the experiment task: splits, training with validation-CCC selection, fold records
tuning           keras-tuner HyperModel and its search_fold (experiments.search)
figures          Figs. 7-9 from stored folds
synthetic_check  label scale and ridge scores of a MAHNOB set (issue 15)
"""
