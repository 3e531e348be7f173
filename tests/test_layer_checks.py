"""The shared layer/loss/schedule checks (tests/layer_checks.py) must fail for the right reasons."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests.layer_checks import run_layer_test, run_loss_test, run_schedule_test  # noqa: E402


@keras.saving.register_keras_serializable(package="layer_checks_test")
class Scale(keras.layers.Layer):
    """y = x * s (one trainable weight); ``forget_config`` / ``own_policy`` plant the bugs under test."""

    def __init__(self, units=3, forget_config=False, own_policy=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.forget_config, self.own_policy = units, forget_config, own_policy
        self.dense = keras.layers.Dense(units, dtype="float32" if own_policy else self.dtype_policy, name="dense")

    def build(self, input_shape):
        self.s = self.add_weight(name="s", shape=(input_shape[-1],), initializer="ones")
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x * self.s)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(forget_config=self.forget_config, own_policy=self.own_policy)
        if not self.forget_config:
            config["units"] = self.units
        return config


X = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")


def test_a_correct_layer_passes():
    run_layer_test(Scale, {"units": 3}, X, expected_output_shape=(4, 3), expected_num_trainable_weights=3)


# mixed precision is not checked on torch CPU (as in Keras' own run_layer_test)
TORCH_CPU = keras.backend.backend() == "torch" and not __import__("torch").cuda.is_available()


@pytest.mark.parametrize("kwargs, counts, match", [
    ({"units": 2, "forget_config": True}, 3, "lacks init arguments"),
    ({"units": 3}, 2, "expected 2 trainable"),
    pytest.param({"units": 3, "own_policy": True}, 3, "sublayer 'dense' has dtype policy",
                 marks=pytest.mark.skipif(TORCH_CPU, reason="no mixed-precision check on torch CPU")),
])
def test_planted_bugs_are_caught(kwargs, counts, match):
    with pytest.raises(AssertionError, match=match):
        run_layer_test(Scale, kwargs, X, expected_output_shape=(4, kwargs["units"]),
                       expected_num_trainable_weights=counts)


def test_wrong_expected_output_is_caught():
    with pytest.raises(AssertionError, match="expected_output"):
        run_layer_test(Scale, {"units": 3}, X, expected_output_shape=(4, 3), expected_num_trainable_weights=3,
                       expected_output=np.zeros((4, 3)), run_training_step=False, run_mixed_precision=False,
                       run_keras_reload=False)


@keras.saving.register_keras_serializable(package="layer_checks_test")
def half_squared_error(y_true, y_pred):
    return 0.5 * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


def test_loss_helper_on_a_function_and_a_loss_class():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    expected = 0.5 * ((y_true - y_pred) ** 2).mean(-1)
    run_loss_test(half_squared_error, y_true, y_pred, expected)
    run_loss_test(keras.losses.MeanSquaredError(), y_true, y_pred, (2 * expected).mean())
    with pytest.raises(AssertionError, match="eager value"):
        run_loss_test(half_squared_error, y_true, y_pred, expected + 0.1)


def test_schedule_helper():
    kwargs = {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}
    steps = [0, 10, 20]
    run_schedule_test(keras.optimizers.schedules.ExponentialDecay, kwargs, steps, [0.1, 0.05, 0.025])
    with pytest.raises(AssertionError, match="values at steps"):
        run_schedule_test(keras.optimizers.schedules.ExponentialDecay, kwargs, steps, [0.1, 0.05, 0.02])


@keras.saving.register_keras_serializable(package="layer_checks_test")
class ScaledSum(keras.layers.Layer):
    """a * s + b, called with keyword tensors (the dict form of ``input_data``)."""

    def build(self, a_shape, b_shape):
        self.s = self.add_weight(name="s", shape=(a_shape[-1],), initializer="ones")

    def call(self, a, b):
        return a * self.s + b

    def compute_output_shape(self, a_shape, b_shape):
        return a_shape


def test_dict_inputs_are_keyword_arguments():
    a, b = X, 2 * X
    run_layer_test(ScaledSum, {}, {"a": a, "b": b}, expected_output_shape=(4, 5), expected_num_trainable_weights=1,
                   expected_output=3 * X)
