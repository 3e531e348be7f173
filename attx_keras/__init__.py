"""Attentive cross-modal connections (AttX) between ECG and EDA networks on WESAD.

Reproduces Bhatti, Behinaein, Rodenburg, Hungler & Etemad, "Attentive Cross-modal
Connections for Deep Multimodal Wearable-based Emotion Recognition", ACII Workshops 2021.

Modules
-------
data.wesad      reader of WESAD subject pickles (restricted unpickler)
data.synthetic  writer of a synthetic WESAD in the same on-disk format (embedded default)
pipeline        raw pickles -> 10-s windows at 256 Hz, cached on disk (section III-A)
layers          the AttX layer (eqs. 1-5)
models          the ECG SE-ResNet, the EDA CNN, AttX/cross/feature/unimodal models (Fig. 2)
task            the experiment task: LOSO folds, training as section III-B
tuning          keras-tuner HyperModel over direction x stage set
"""
