"""Tables 3-7 of Jin et al. 2024 (RMMT on MAHNOB-HCI continuous valence), run by ``rmmt.task``.

Rows with the same name share their stored folds across tables (``rmmt`` is in Tables 3, 4, 6
and is the alpha = 1 row of Table 7). The LOSO table has its own row names (another protocol).
Paper numbers are RMSE / PCC / CCC (valence in [-0.5, 0.5]); the paper's quoted comparison rows
(Soleymani [29], Choi [31], Zhang [32]) are shown, not re-run.
"""
from __future__ import annotations

from dataclasses import replace

from experiments.references import reference_rows
from experiments.spec import ExperimentSpec, Profile, Row

TASK = "rmmt.task:MahnobValenceTask"
#: RMSE / PCC / CCC of the pooled test steps of a fold (the paper's), RMSE divided by the std of the
#: fold's test labels (1 = the best constant in hindsight), and the mean over test trials of each
#: trial's CCC (``trial_mean_metrics``)
METRICS = ("rmse", "pcc", "ccc", "rmse_rel", "trial_ccc")
#: the quick profile's alpha sweep (Table 7); the paper profile runs all of them (the keys of TABLE7_PAPER)
QUICK_ALPHAS = (0.2, 1.0, 2.0)
CLASSICAL = ("ridge regression per 4-Hz step on the 192 EEG band powers and the step's mean face embedding, "
             "standardised on the fold's training + validation trials")

_BASE = dict(window_steps=32, train_hop_steps=8, eval_hop_steps=16, batch_size=16, learning_rate=1e-3,
             val_fraction=0.4, k=10)


#: The quick LOSO profile's synthetic set (Table 5): 12 participants instead of the default 8. With 8, a
#: LOSO fold trained on 5 subjects and validated on 2, and the fold mean over 8 held-out subjects hung on
#: a few draws: the first 8 participants' EEG effects are weaker than the generator's documented
#: distribution (mean alpha asymmetry 0.070 and gamma gain 0.084 per sd of valence, against 0.10 and
#: 0.125; participants 2, 3 and 5 have next to none, 2 a reversed gamma), so no EEG-only model
#: could beat the best constant on the fold mean (ridge on EEG: fold-mean RMSE / std(test) 1.12).
#: Participant p is drawn from the seed and p only, so participants 1-8 are those of the default set;
#: the generator and its effect sizes are unchanged (README, rmmt section).
LOSO_SYNTHETIC = {"n_participants": 12}

#: The smoke profile's synthetic set: 3 participants x 3 sessions (2 of them the defect sessions) of 8-10 s.
SMOKE_SYNTHETIC = {"n_participants": 3, "sessions_per_participant": 3, "stim_range_s": [8.0, 10.0]}


#: The quick profiles' data, as their text says it.
_QUICK_DATA = {
    "kfold": "the default synthetic MAHNOB set (8 participants x 6 sessions of 12-24 s, 46 usable trials)",
    "loso": ("a larger synthetic MAHNOB set (12 participants x 6 sessions of 12-24 s, 70 usable trials; participants "
             "1-8 drawn as in the 8-participant set of the 5-fold tables, its defect session moved to participant 12), "
             "so that each fold trains on 8 subjects and validates on 3 (with 8 participants: 5 and 2; the paper: 18 "
             "and 5)"),
}


def _profiles(protocol: str) -> dict:
    val = 0.4 if protocol == "kfold" else 0.2
    unit = "10-fold over trials" if protocol == "kfold" else "leave-one-subject-out"
    return {
        "smoke": Profile("smoke", {**_BASE, "protocol": protocol, "k": 3, "n_folds": 1, "epochs": 1,
                                   "val_fraction": val, "frame_stride": 8, "synthetic": SMOKE_SYNTHETIC},
                         f"tiny synthetic set (7 trials of 8-10 s), {'3-fold over trials' if protocol == 'kfold' else unit} "
                         "with 1 fold, 1 epoch, 2 of 16 frames per step embedded "
                         "(tests only; numbers mean nothing)"),
        "quick": Profile("quick", {**_BASE, "protocol": protocol, "k": 5, "n_folds": None, "epochs": 20,
                                   "val_fraction": val, "frame_stride": 4,
                                   "synthetic": {} if protocol == "kfold" else LOSO_SYNTHETIC},
                         f"{_QUICK_DATA[protocol]}, labels on the real file's scale, instead of 239 real trials; "
                         f"{'5-fold over trials, every fold (the paper: 10-fold)' if protocol == 'kfold' else unit + ', every subject'}; "
                         f"20 epochs (best by validation CCC); 4 of the 16 frames per label step embedded (every 4th); "
                         f"alpha sweep 0.2 / 1.0 / 2.0 only (the paper: 0.2 ... 2.0 in steps of 0.2)"),
        "paper": Profile("paper", {**_BASE, "protocol": protocol, "n_folds": None, "epochs": 50, "val_fraction": val,
                                   "frame_stride": 1, "synthetic": {}, "require_trained_backbone": True},
                         f"the paper's protocol: all trials, {unit} with every fold "
                         f"({'60/40 train/validation of the rest' if protocol == 'kfold' else '8:2 train/validation subjects'}), "
                         "all 16 frames per step; 50 epochs with the best validation-CCC epoch (the paper "
                         "gives no epoch count)"),
    }


KFOLD = _profiles("kfold")
LOSO = _profiles("loso")


def _p(rmse, pcc, ccc=None, sd=None) -> dict:
    """The paper's means, and its ± std (``sd``: (rmse, pcc, ccc) or (rmse, pcc)) where it prints one."""
    out = {"rmse": rmse, "pcc": pcc}
    if ccc is not None:
        out["ccc"] = ccc
    for m, v in zip(("rmse", "pcc", "ccc"), sd or ()):
        out[f"{m}_sd"] = v
    return out


RMMT_CONFIG = dict(variant="rmmt", alpha=1.0)
RMMT_PAPER = _p(0.051, 0.755, 0.736, (0.007, 0.082, 0.078))

# Table 3
F_FUSION = Row("f_fusion", dict(variant="f_fusion"), {"Model": "(a) F-Fusion"}, _p(0.050, 0.738, 0.706, (0.010, 0.082, 0.080)))
D_FUSION = Row("d_fusion", dict(variant="d_fusion", mu=0.6, eta=0.4), {"Model": "(b) D-Fusion (mu 0.6, eta 0.4)"},
               _p(0.050, 0.747, 0.713, (0.009, 0.074, 0.076)))
#: ``floor`` (training mean) and ``classical`` (ridge) rows, on the same folds as every row;
#: the LOSO table's get their own names (another protocol, other folds)
REFS_MODEL = reference_rows(("Model",), CLASSICAL)
REFS_T4 = reference_rows(("Modality", "Model"), CLASSICAL)
REFS_LOSO = tuple(replace(r, name=f"loso-{r.name}") for r in reference_rows(("Modality", "Model"), CLASSICAL))
REFS_ALPHA = reference_rows(("alpha",), CLASSICAL)

TABLE3_ROWS = REFS_MODEL + (F_FUSION, D_FUSION, Row("rmmt", RMMT_CONFIG, {"Model": "(c) RMMT"}, RMMT_PAPER))


# Table 4 (10-fold); quoted rows are not re-run
def _t4(name, config, modality, model, paper):
    return Row(name, config, {"Modality": modality, "Model": model}, paper)


TABLE4_ROWS = REFS_T4 + (
    _t4("soleymani-eeg", None, "EEG", "Soleymani [29]", _p(0.053, 0.240, sd=(0.029, 0.340))),
    _t4("choi-eeg", None, "EEG", "Choi [31]", _p(0.049, 0.290, sd=(0.005, 0.080))),
    _t4("zhang-eeg", None, "EEG", "Zhang [32]", _p(0.068, 0.492, 0.443, (0.017, 0.142, 0.148))),
    _t4("rsmt_e", dict(variant="rsmt_e"), "EEG", "RSMT-E", _p(0.077, 0.492, 0.450, (0.014, 0.135, 0.127))),
    _t4("soleymani-face", None, "Face", "Soleymani [29]", _p(0.043, 0.480, sd=(0.026, 0.370))),
    _t4("choi-face", None, "Face", "Choi [31]", _p(0.039, 0.520, sd=(0.004, 0.070))),
    _t4("zhang-face", None, "Face", "Zhang [32]", _p(0.056, 0.715, 0.670, (0.008, 0.079, 0.076))),
    _t4("rsmt_f", dict(variant="rsmt_f"), "Face", "RSMT-F", _p(0.054, 0.727, 0.701, (0.009, 0.084, 0.079))),
    _t4("soleymani-multimodal", None, "Multimodal", "Soleymani [29]", _p(0.044, 0.450, sd=(0.026, 0.35))),
    _t4("choi-multimodal", None, "Multimodal", "Choi [31]", _p(0.037, 0.530, sd=(0.003, 0.05))),
    _t4("zhang-multimodal", None, "Multimodal", "Zhang [32]", _p(0.068, 0.471, 0.42, (0.019, 0.155, 0.116))),
    _t4("rmmt", RMMT_CONFIG, "Multimodal", "RMMT", RMMT_PAPER),
)

# Table 5 (leave-one-subject-out)
TABLE5_ROWS = REFS_LOSO + (
    _t4("loso-zhang-eeg", None, "EEG", "Zhang [32]", _p(0.064, 0.498, 0.391, (0.026, 0.245, 0.245))),
    _t4("loso-rsmt_e", dict(variant="rsmt_e"), "EEG", "RSMT-E", _p(0.070, 0.438, 0.374, (0.020, 0.254, 0.246))),
    _t4("loso-zhang-face", None, "Face", "Zhang [32]", _p(0.054, 0.668, 0.574, (0.018, 0.231, 0.226))),
    _t4("loso-rsmt_f", dict(variant="rsmt_f"), "Face", "RSMT-F", _p(0.052, 0.675, 0.603, (0.013, 0.249, 0.225))),
    _t4("loso-rmmt", RMMT_CONFIG, "Multimodal", "RMMT", _p(0.047, 0.703, 0.635, (0.011, 0.195, 0.195))),
)

# Table 6 (ablations)
TABLE6_ROWS = REFS_MODEL + (
    Row("mmt", dict(variant="mmt", alpha=1.0), {"Model": "MMT (no residual)"}, _p(0.071, 0.731, 0.659, (0.012, 0.091, 0.098))),
    Row("rmmt_no_kd", dict(variant="rmmt", kd=False, alpha=0.0), {"Model": "RMMT without KD loss"},
        _p(0.053, 0.746, 0.722, (0.007, 0.087, 0.082))),
    Row("rmmt", RMMT_CONFIG, {"Model": "RMMT"}, RMMT_PAPER),
)

# Table 7 / Fig. 9 (alpha sweep)
TABLE7_PAPER = {
    0.2: _p(0.050, 0.752, 0.733, (0.007, 0.089, 0.091)), 0.4: _p(0.051, 0.753, 0.733, (0.006, 0.077, 0.077)), 0.6: _p(0.052, 0.755, 0.734, (0.007, 0.080, 0.075)),
    0.8: _p(0.051, 0.753, 0.733, (0.007, 0.082, 0.078)), 1.0: RMMT_PAPER, 1.2: _p(0.052, 0.747, 0.726, (0.008, 0.091, 0.085)), 1.4: _p(0.052, 0.746, 0.728, (0.007, 0.088, 0.081)),
    1.6: _p(0.054, 0.742, 0.713, (0.009, 0.084, 0.087)), 1.8: _p(0.053, 0.738, 0.715, (0.008, 0.082, 0.078)), 2.0: _p(0.053, 0.736, 0.714, (0.008, 0.082, 0.073)),
}


def alpha_row(alpha: float) -> Row:
    if alpha == 1.0:
        return Row("rmmt", RMMT_CONFIG, {"alpha": "1.0"}, RMMT_PAPER)
    return Row(f"rmmt-alpha{alpha:.1f}", dict(variant="rmmt", alpha=float(alpha)), {"alpha": f"{alpha:.1f}"},
               TABLE7_PAPER[alpha])


#: Table 7's alphas, 0.2 ... 2.0 in steps of 0.2 (rmmt.config.ALPHA_SWEEP): the keys of TABLE7_PAPER
ALPHA_ROWS = REFS_ALPHA + tuple(alpha_row(a) for a in sorted(TABLE7_PAPER))
#: the rows the quick and smoke profiles run and show in Table 7 (the paper profile: all of them)
QUICK_ALPHA_ROWS = tuple(r.name for r in REFS_ALPHA) + tuple(alpha_row(a).name for a in QUICK_ALPHAS)

_NOTES = (
    "Paper numbers: real MAHNOB-HCI (239 trials, 24 subjects), face backbone ResNet50 pre-trained on "
    "MS-Celeb-1M and fine-tuned on FER+. Ours: see Data above for the dataset and the face backbone actually used; "
    "on synthetic data they only show that the pipeline works and how the rows compare.",
    "A fold's RMSE / PCC / CCC are computed on the concatenated 4-Hz steps of all its test trials; the table "
    "shows mean ± sample std over folds, and pooled (all folds' test steps together). RMSE / std(test): the "
    "fold's RMSE divided by the std of its test labels (the RMSE of the best constant in hindsight; below 1 = "
    "better than any constant). CCC per trial: each test trial's CCC, averaged over the fold's test trials. "
    "Paper columns show the paper's ± std where it prints one.",
    "Reference rows: floor = the mean of the training + validation trials' labels; classical = the ridge "
    "regression named in its row. Neither needs validation data, so both are fitted on all non-test trials.",
    "Model selection: the epoch with the best CCC on the validation trials (never the test trials).",
)
_KD_NOTE = "Loss: CCC + alpha * KD (eq. 21) for RMMT and MMT; CCC only for the other rows (and RMMT without KD)."

EXPERIMENTS = (
    ExperimentSpec("rmmt_table3", "RMMT Table 3: fusion methods (the paper: 10-fold over trials; the profile line says what ran), continuous valence", TASK,
                   TABLE3_ROWS, KFOLD, METRICS, primary="ccc", compare_to="rmmt", notes=
                   _NOTES + (_KD_NOTE, "D-Fusion: face and EEG regressors each trained with their own CCC loss, "
                             "predictions fused 0.6 / 0.4 (eq. 26); the Fig. 7 sweep re-fuses the stored branch "
                             "predictions (rmmt_fig7_dfusion_sweep.png).")),
    ExperimentSpec("rmmt_table4", "RMMT Table 4: comparison with other models (the paper: 10-fold); quoted rows are not re-run",
                   TASK, TABLE4_ROWS, KFOLD, METRICS, primary="ccc", compare_to="rmmt", notes=
                   _NOTES + ("RSMT-E / RSMT-F: one stream with a self-attention Transformer (the same ReLU "
                             "attention, N layers) and the residual concat, CCC loss only.",)),
    ExperimentSpec("rmmt_table5", "RMMT Table 5: leave-one-subject-out", TASK, TABLE5_ROWS, LOSO, METRICS,
                   primary="ccc", compare_to="loso-rmmt", notes=
                   _NOTES + ("LOSO: the other subjects are split 8:2 into training and validation subjects.",)),
    ExperimentSpec("rmmt_table6", "RMMT Table 6: ablations of the residual connection and the KD loss (the paper: 10-fold)",
                   TASK, TABLE6_ROWS, KFOLD, METRICS, primary="ccc", compare_to="rmmt", notes=_NOTES + (_KD_NOTE,)),
    ExperimentSpec("rmmt_alpha", "RMMT Table 7 / Fig. 9: weight alpha of the KD loss (the paper: 10-fold)", TASK, ALPHA_ROWS,
                   KFOLD, METRICS, primary="ccc", compare_to="rmmt", notes=_NOTES,
                   profile_rows={"quick": QUICK_ALPHA_ROWS, "smoke": QUICK_ALPHA_ROWS}),
)
