"""A NumPy-only task for runner tests: threshold classifiers on per-subject 1-D data.

``TOY_LOG`` (a file) receives one line per executed fold; ``TOY_CRASH_AFTER=k`` makes the
fold after the k-th executed one raise, as if the sweep were killed there; if the file named
by ``TOY_DIE_ONCE`` exists, the next fold removes it and ends its process (a lost worker).
With ``save_models`` its "model" is a zip archive holding the threshold (as a ``.keras`` is a zip).
"""
import io
import json
import os
import zipfile

import numpy as np

from experiments import metrics as M
from experiments.spec import ExperimentSpec, Profile, Row
from experiments.store import atomic_write_bytes, stable_hash
from experiments.task import Prepared


class ToyTask:
    name = "toy"
    version = "1"
    code = ("tests.toy_task",)  # the source its numbers depend on (see experiments.provenance)

    def prepare(self, params, data_root, cache_dir, *, allow_missing=False):
        rng = np.random.default_rng(0)
        data = {}
        for i in range(params["n_subjects"]):
            y = rng.integers(0, 2, 40)
            data[f"S{i}"] = (y + rng.normal(0, 0.6, 40), y)
        return Prepared(stable_hash([params, data_root]), "toy data", data)

    def folds(self, prepared, params):
        return sorted(prepared.data)

    def run_fold(self, config, fold, prepared, params, options):
        armed = os.environ.get("TOY_DIE_ONCE")
        if armed:
            try:
                os.remove(armed)  # only one worker can remove it: that one is lost mid-fold
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        log = os.environ.get("TOY_LOG")
        if log:
            done = open(log).read().count("\n") if os.path.exists(log) else 0
            if "TOY_CRASH_AFTER" in os.environ and done >= int(os.environ["TOY_CRASH_AFTER"]):
                raise RuntimeError("simulated kill")
            with open(log, "a") as fh:
                fh.write(f"{config['threshold']} {fold}\n")
        x, y = prepared.data[fold]
        saved = options.model_file(fold)
        if saved is not None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("config.json", json.dumps({"threshold": config["threshold"], "seed": options.seed}))
            atomic_write_bytes(saved, buf.getvalue())
        pred = (x > config["threshold"]).astype(int)
        return {"metrics": {"accuracy": M.accuracy(y, pred), "f1_macro": M.f1_macro(y, pred, labels=[0, 1])},
                "y_true": y.tolist(), "y_pred": pred.tolist(), "class_names": ["neg", "pos"],
                "test_subject": fold, "train_subjects": [s for s in sorted(prepared.data) if s != fold]}


SPEC = ExperimentSpec(
    name="toy", title="Toy table", task="tests.toy_task:ToyTask",
    rows=(Row("low", {"threshold": 0.2}, {"Rule": "x > 0.2"}, {"accuracy": 70.0}),
          Row("mid", {"threshold": 0.5}, {"Rule": "x > 0.5"}, {"accuracy": 80.0}),
          Row("quoted", None, {"Rule": "someone else's"}, {"accuracy": 99.0})),
    profiles={"smoke": Profile("smoke", {"n_subjects": 4}, "4 toy subjects")},
    metrics=("accuracy", "f1_macro"), default_profile="smoke")
