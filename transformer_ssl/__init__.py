"""Emotion recognition with pre-trained Transformers using multimodal signals (Vazquez-Rodriguez et al., ACII 2022).

A 1D-CNN + Transformer encoder pre-trained by masked value prediction (MVP) on unlabeled EEG
corpora, fine-tuned on AMIGOS (ECG + 10 EEG channels, 128 Hz) for high/low arousal and valence with
10-fold CV (mean ± 95 % CI), and a late-fusion EEG+ECG model (Tables 1-4 of the paper).

Modules
-------
data.amigos     reader of AMIGOS ``Data_Preprocessed_P<NN>.mat`` files
data.corpora    readers of the pre-training EEG corpora (eegmmidb EDF, WAY-EEG-GAL, Kaya 2018)
data.synthetic* writers of synthetic AMIGOS and corpora in the real formats (embedded default)
pipeline        AMIGOS files -> 10-s segments at 128 Hz, cached (section 4.1)
corpora         the pre-training corpora (EEG; ECG of [15]) -> 10-s segments, cached
layers          CLS token, sinusoidal positions, Transformer encoder block
models          build_cnn, build_encoder, build_pretrain_model, build_recognizer, build_fused (Figs. 1-2)
pretrain        MVP masks (MaskConfig), masked_mse, the pre-training loop (section 3.2.1)
schedules       WarmupLinearDecay, StepDecay (sections 4.3-4.4)
optimizers      CoupledL2Adam: Adam with coupled ("PyTorch") L2 weight decay
settings        row config, TrainingSettings of the three stages, FoldContext
fold_data       AmigosData (a fold's segments, --zscore training), selection, leakage and constant checks
task            the experiment task: folds, pre-training, fine-tuning, late fusion, cached artefacts
tuning          keras-tuner search over the fine-tuning settings, its search_fold (experiments.search)
features        classical HR/HRV and EEG band-power features (the ``classical`` reference row)
diagnose, cost  measurements: why a short schedule stays constant; the paper profile's FLOPs
"""
