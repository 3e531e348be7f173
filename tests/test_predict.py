"""`python -m attx_keras.predict`: real wearable exports, WESAD pickles, and malformed inputs (issue 9.6)."""
import json
import pickle

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from attx_keras.pipeline import PipelineParams, windows_for_inference  # noqa: E402
from attx_keras.data.signal_files import read_signal_file  # noqa: E402
from attx_keras.predict import main  # noqa: E402
from experiments.errors import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained AttX model at the pipeline's window (10 s at 256 Hz): the wiring needs no training."""
    from attx_keras.models import build_model

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("models") / "attx.keras"
    build_model("attx", direction="both", stages=[1], input_seconds=10).save(path)
    return path


@pytest.fixture(scope="module")
def short_model_file(tmp_path_factory):
    from attx_keras.models import build_model

    path = tmp_path_factory.mktemp("models") / "short.keras"
    build_model("eda", input_seconds=2).save(path)
    return path


def run(argv, capsys):
    status = run_cli(main, [str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def printed_table(out: str) -> pd.DataFrame:
    lines = [line for line in out.splitlines() if not line.startswith(("#", "wrote"))]
    return pd.read_csv(pd.io.common.StringIO("\n".join(lines)), sep=r"\s+")


def expected_p_stress(model_file, ecg, fs_ecg, eda, fs_eda):
    """An independent path: the pipeline's inference windows straight into model.predict."""
    model = keras.models.load_model(model_file)
    e, d, _ = windows_for_inference(ecg, fs_ecg, eda, fs_eda)
    return model.predict({"ecg": e, "eda": d}, verbose=0)[:, 1]


def test_real_plux_recordings(realdata, model_file, tmp_path, capsys):
    plux = realdata / "ecg_eda_plux"
    out_csv = tmp_path / "p.csv"
    status, out, err = run([model_file, "--ecg", plux / "ecg.txt", "--eda", plux / "eda.txt", "--out", out_csv], capsys)
    assert status == 0, err
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["window", "start_s", "end_s", "p_stress", "predicted"]
    # ECG 15 s and EDA 150 s: 15 s in common -> windows at 0 and 5 s
    assert table["start_s"].tolist() == [0.0, 5.0] and table["end_s"].tolist() == [10.0, 15.0]
    assert table["p_stress"].between(0, 1).all()
    assert (table["predicted"] == np.where(table["p_stress"] >= 0.5, "stress", "non-stress")).all()
    np.testing.assert_allclose(printed_table(out)["p_stress"], table["p_stress"], atol=1e-4)
    ecg = np.loadtxt(plux / "ecg.txt", comments="#")
    eda = np.loadtxt(plux / "eda.txt", comments="#")
    np.testing.assert_allclose(table["p_stress"], expected_p_stress(model_file, ecg, 1000, eda, 1000), atol=1e-6)
    assert "simple, column ECG, 1000 Hz" in out


def test_readers_of_real_exports(realdata):
    ecg = read_signal_file(realdata / "ecg_eda_plux" / "ecg.txt", "ECG")
    assert (ecg.format, ecg.fs, ecg.column, ecg.values.size) == ("simple", 1000.0, "ECG", 15000)
    assert ecg.values[0] == 2044.0
    e4 = read_signal_file(realdata / "empatica_e4" / "EDA.csv", "EDA")
    assert (e4.format, e4.fs, e4.values.size) == ("e4", 4.0, 9998)
    assert e4.values[:2].tolist() == [0.0, 0.020499]
    acc = read_signal_file(realdata / "empatica_e4" / "ACC.csv", "EDA", column="2")
    assert (acc.fs, acc.values[0]) == (32.0, 6.0)


def _opensignals(path, ecg, eda, fs=1000):
    header = {"00:07:80:3B:46:61": {"sensor": ["ECG", "EDA"], "column": ["nSeq", "I1", "I2", "O1", "O2", "A1", "A2"],
                                    "sampling rate": fs, "label": ["CH1", "CH2"], "resolution": [16, 16],
                                    "device": "biosignalsplux"}}
    n = min(ecg.size, eda.size)
    rows = "".join(f"{i % 16}\t0\t0\t0\t0\t{int(ecg[i])}\t{int(eda[i])}\t\n" for i in range(n))
    path.write_text("# OpenSignals Text File Format\n# " + json.dumps(header) + "\n# EndOfHeader\n" + rows)
    return path


def test_opensignals_file_with_both_channels_gives_the_same_windows(realdata, model_file, tmp_path, capsys):
    plux = realdata / "ecg_eda_plux"
    ecg = np.loadtxt(plux / "ecg.txt", comments="#")
    eda = np.loadtxt(plux / "eda.txt", comments="#")[: ecg.size]
    both = _opensignals(tmp_path / "opensignals.txt", ecg, eda)
    sig = read_signal_file(both, "EDA")
    assert (sig.format, sig.column, sig.fs) == ("opensignals", "A2", 1000.0)
    np.testing.assert_array_equal(sig.values, eda)
    assert read_signal_file(both, "ECG", column="CH1").column == "A1"
    status, out, err = run([model_file, "--ecg", both, "--eda", both, "--fs-ecg", 1000, "--out", tmp_path / "o.csv"],
                           capsys)
    assert status == 0, err
    want = expected_p_stress(model_file, ecg, 1000, eda, 1000)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "o.csv")["p_stress"], want, atol=1e-6)


def test_plain_csv_with_header_and_given_rates(realdata, model_file, tmp_path, capsys):
    ecg = np.loadtxt(realdata / "ecg_eda_plux" / "ecg.txt", comments="#")
    eda = np.loadtxt(realdata / "ecg_eda_plux" / "eda.txt", comments="#")[::10]  # as if recorded at 100 Hz
    pd.DataFrame({"time_s": np.arange(ecg.size) / 1000, "ecg_mV": ecg}).to_csv(tmp_path / "ecg.csv", index=False)
    np.savetxt(tmp_path / "eda.txt", eda)
    status, out, err = run([model_file, "--ecg", tmp_path / "ecg.csv", "--ecg-column", "ecg_mV", "--fs-ecg", 1000,
                            "--eda", tmp_path / "eda.txt", "--fs-eda", 100], capsys)
    assert status == 0, err
    np.testing.assert_allclose(printed_table(out)["p_stress"],
                               expected_p_stress(model_file, ecg, 1000, eda, 100), atol=1e-4)


def test_wesad_pickle_gives_the_training_windows_and_labels(wesad_root, model_file, tmp_path, capsys):
    from attx_keras.pipeline import load_subject_windows

    path = wesad_root / "S3" / "S3.pkl"
    status, out, err = run([model_file, "--wesad", path, "--out", tmp_path / "s3.csv"], capsys)
    assert status == 0, err
    table = pd.read_csv(tmp_path / "s3.csv")
    w, _ = load_subject_windows(path, PipelineParams())
    assert len(table) == len(w) and table["label_code"].tolist() == w.code.tolist()
    assert set(table["label"]) <= {"baseline", "stress", "amusement"}
    want = keras.models.load_model(model_file).predict({"ecg": w.ecg, "eda": w.eda}, verbose=0)[:, 1]
    np.testing.assert_allclose(table["p_stress"], want, atol=1e-6)
    np.testing.assert_allclose(table["start_s"], w.start / 256, atol=1e-6)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


MALFORMED = {
    # name: (argument builder -> argv after the model, text the one-line error must contain)
    "missing ECG file": (lambda d, r: ["--ecg", d / "nope.txt", "--eda", r / "eda.txt"], "nope.txt: no such file"),
    "rate disagrees with the file": (lambda d, r: ["--ecg", r / "ecg.txt", "--eda", r / "eda.txt", "--fs-ecg", 500],
                                     "ecg.txt: sampling rate 1000 Hz in the file, --fs-ecg 500"),
    "negative rate": (lambda d, r: ["--ecg", r / "ecg.txt", "--eda", r / "eda.txt", "--fs-eda", -3],
                      "--fs-eda: -3.0 (expected a positive sampling rate"),
    "rate missing for plain text": (lambda d, r: ["--ecg", d / "plain.txt", "--eda", r / "eda.txt"],
                                    "--fs-ecg: not given, and"),
    "ECG rate too low for the band-pass": (lambda d, r: ["--ecg", d / "plain.txt", "--fs-ecg", 20,
                                                         "--eda", r / "eda.txt"], "sampling rate 20 Hz"),
    "non-numeric column": (lambda d, r: ["--ecg", d / "text.csv", "--fs-ecg", 1000, "--eda", r / "eda.txt"],
                           "text.csv: non-numeric value 'abc' in column 0 at line 3"),
    "too short": (lambda d, r: ["--ecg", d / "short.txt", "--eda", r / "eda.txt"],
                  "3.0 s of ECG and EDA together (expected at least one 10-s window"),
    "empty file": (lambda d, r: ["--ecg", d / "empty.txt", "--fs-ecg", 1000, "--eda", r / "eda.txt"],
                   "empty.txt: an empty file"),
    "several columns, none chosen": (lambda d, r: ["--ecg", d / "two.csv", "--fs-ecg", 1000, "--eda", r / "eda.txt"],
                                     "two.csv: 2 signal columns ['a', 'b']"),
    "unknown column": (lambda d, r: ["--ecg", d / "two.csv", "--ecg-column", "c", "--fs-ecg", 1000,
                                     "--eda", r / "eda.txt"], "two.csv: --ecg-column: 'c'"),
    "broken OpenSignals header": (lambda d, r: ["--ecg", d / "os.txt", "--eda", r / "eda.txt"],
                                  "os.txt: line 2: unreadable JSON header"),
    "flat sensor": (lambda d, r: ["--ecg", d / "flat.txt", "--fs-ecg", 1000, "--eda", r / "eda.txt"],
                    "flat.txt: ECG: constant signal"),
    "NaN run": (lambda d, r: ["--ecg", d / "nan.txt", "--fs-ecg", 1000, "--eda", r / "eda.txt"],
                "nan.txt: ECG: 5 NaN/inf sample(s), first at sample 100"),
    "no EDA": (lambda d, r: ["--ecg", r / "ecg.txt"], "--eda: not given"),
    "WESAD and files together": (lambda d, r: ["--wesad", d / "x.pkl", "--ecg", r / "ecg.txt"],
                                 "--wesad: given together with --ecg/--eda"),
    "missing WESAD pickle": (lambda d, r: ["--wesad", d / "x.pkl"], "x.pkl: no such file"),
    "malicious WESAD pickle": (lambda d, r: ["--wesad", d / "evil.pkl"], "evil.pkl"),
    "truncated WESAD pickle": (lambda d, r: ["--wesad", d / "cut.pkl"], "cut.pkl: not a readable pickle"),
    "out is not a CSV": (lambda d, r: ["--ecg", r / "ecg.txt", "--eda", r / "eda.txt", "--out", d / "p.json"],
                         "--out: "),
}


@pytest.fixture()
def bad_files(realdata, tmp_path):
    plux = realdata / "ecg_eda_plux"
    ecg = np.loadtxt(plux / "ecg.txt", comments="#")
    np.savetxt(tmp_path / "plain.txt", ecg)
    (tmp_path / "text.csv").write_text("1\n2\nabc\n4\n")
    (tmp_path / "short.txt").write_text("".join((plux / "ecg.txt").read_text().splitlines(True)[:3004]))
    (tmp_path / "empty.txt").write_text("\n\n")
    pd.DataFrame({"a": ecg, "b": ecg}).to_csv(tmp_path / "two.csv", index=False)
    (tmp_path / "os.txt").write_text("# OpenSignals Text File Format\n# {not json\n# EndOfHeader\n1\t2\n")
    np.savetxt(tmp_path / "flat.txt", np.full(ecg.size, 7.0))
    nan = ecg.copy()
    nan[100:105] = np.nan
    np.savetxt(tmp_path / "nan.txt", nan)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil(), protocol=2))
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"label": np.zeros(10)}, protocol=2)[:20])
    return tmp_path, plux


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_inputs_give_one_line_errors(case, bad_files, model_file, capsys):
    folder, plux = bad_files
    build, text = MALFORMED[case]
    out_csv = folder / "out.csv"
    argv = [model_file, *build(folder, plux)]
    if "--out" not in argv:
        argv += ["--out", out_csv]
    status, out, err = run(argv, capsys)
    assert status == 2, (case, err)
    line = err.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line, line
    assert text in line, line
    assert not out_csv.exists() and not (folder / "p.json").exists()


@pytest.mark.parametrize("which, text", [
    ("missing", "missing.keras: no such file"),
    ("suffix", "model.h5: a .h5 file (expected a .keras model file"),
    ("short", "input 'eda': shape (512, 1) (expected (2560, 1)"),
])
def test_bad_model_files(which, text, realdata, short_model_file, tmp_path, capsys):
    plux = realdata / "ecg_eda_plux"
    (tmp_path / "model.h5").write_bytes(b"not a model")
    model = {"missing": tmp_path / "missing.keras", "suffix": tmp_path / "model.h5", "short": short_model_file}[which]
    status, out, err = run([model, "--ecg", plux / "ecg.txt", "--eda", plux / "eda.txt"], capsys)
    assert status == 2 and text in err.strip() and "\n" not in err.strip(), err


def test_saved_model_names_its_training_subjects_and_warns_on_one(wesad_root, model_file, tmp_path, capsys):
    """Issue 18.7: a model saved by --save-models carries its training subjects; predict prints them
    and warns when --wesad reads one of them (not a held-out estimate), not when it reads the held-out one."""
    import shutil

    from experiments.store import stamp_model

    saved = tmp_path / "S3.keras"
    shutil.copy(model_file, saved)
    stamp_model(saved, {"fold_key": "k", "task": "wesad-stress", "profile": "smoke", "row": "attx-both-s1",
                        "fold": "S3", "test_subject": "S3", "train_subjects": ["S2", "S4"]})
    status, out, err = run([saved, "--wesad", wesad_root / "S3" / "S3.pkl"], capsys)
    assert status == 0, err
    assert "trained on subjects S2, S4" in out.splitlines()[0] and "held out: S3" in out.splitlines()[0]
    assert "warning" not in err and "not a held-out estimate" not in out
    status, out, err = run([saved, "--wesad", wesad_root / "S2" / "S2.pkl"], capsys)
    assert status == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "subject S2 is one of the model's training subjects (S2, S4)" in warning[0]
    assert "not a held-out estimate" in warning[0] and "# warning: " in out
    assert len(printed_table(out)) > 0  # the table is still printed


def test_a_model_without_training_record_says_so(wesad_root, model_file, capsys):
    status, out, err = run([model_file, "--wesad", wesad_root / "S2" / "S2.pkl"], capsys)
    assert status == 0, err
    assert "no training record" in out.splitlines()[0] and "warning" not in err
