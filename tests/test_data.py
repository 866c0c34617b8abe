import numpy as np
import pytest

from actflow import data


def test_sine_dataset_is_reproducible_and_seeded():
    a = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=7)
    b = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=7)
    c = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=8)
    assert a.equals(b)
    assert not np.allclose(a["y"], c["y"])


def test_sine_dataset_matches_the_study_s_definition():
    df = data.make_train_set("sin", 200, -np.pi, np.pi, 0.1, seed=0)
    assert len(df) == 200
    assert df["x"].min() == -np.pi and df["x"].max() == np.pi
    np.testing.assert_allclose(df["y_clean"], np.sin(df["x"]))
    noise = df["y"] - df["y_clean"]
    assert abs(noise.mean()) < 0.03 and 0.08 < noise.std() < 0.12


def test_uniform_sampling_stays_in_range_and_sorted():
    df = data.make_train_set("sin", 500, -1.0, 2.0, 0.0, seed=1, sampling="uniform")
    assert df["x"].is_monotonic_increasing and df["x"].between(-1, 2).all()
    np.testing.assert_array_equal(df["y"], df["y_clean"])


def test_unknown_target_is_named():
    with pytest.raises(KeyError, match="known targets"):
        data.make_train_set("sawtooth", 10, -1, 1, 0.1, 0)
