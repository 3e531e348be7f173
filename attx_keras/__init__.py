"""Attentive cross-modal connections (AttX) between ECG and EDA networks on WESAD.

Reproduces Bhatti, Behinaein, Rodenburg, Hungler & Etemad, "Attentive Cross-modal
Connections for Deep Multimodal Wearable-based Emotion Recognition", ACII Workshops 2021.

Modules
-------
data.wesad         reader of WESAD subject pickles (restricted unpickler)
data.signal_files  readers of one ECG/EDA column of a wearable's text export (OpenSignals, simple, E4, CSV)
data.synthetic     writer of a synthetic WESAD in the same on-disk format (embedded default), its generator version
pipeline           raw pickles -> 10-s windows at 256 Hz, cached on disk (section III-A)
layers             the AttX layer (eqs. 1-5)
models             the ECG SE-ResNet, the EDA CNN, AttX/cross/feature/unimodal models (Fig. 2)
features           classical ECG/EDA window features (the ``classical`` reference row)
task               the experiment task: LOSO folds, training as section III-B (FitSettings)
tuning             keras-tuner HyperModel over direction x stage set, its search_fold (experiments.search)
predict            per-window stress probabilities of a saved model on a recording
"""
