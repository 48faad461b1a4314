import pytest

from peft_transfer.evaluation.metrics import accuracy, macro_f1


def test_accuracy():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75


def test_macro_f1_by_hand():
    preds, labels = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    # class 0: tp1 fp1 fn1 -> 0.5 ; class 1: tp1 fp0 fn1 -> 2/3 ; class 2: tp2 fp1 fn0 -> 0.8
    assert macro_f1(preds, labels) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_never_predicted_class_counts_as_zero():
    assert macro_f1([0, 0], [0, 1], num_classes=2) == pytest.approx((2 / 3 + 0) / 2)


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        accuracy([], [])


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    from peft_transfer.evaluation.metrics import wilson_interval

    for k, n in ((240, 300), (1570, 2000), (3, 40)):
        expected = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k / n, n) == pytest.approx((expected.low, expected.high), abs=1e-8)
    lo, hi = wilson_interval(0.8, 300)
    assert wilson_interval(1.0, 10)[1] == pytest.approx(1.0) and wilson_interval(0.0, 10)[0] == pytest.approx(0.0)
    assert wilson_interval(0.8, 2000)[1] - wilson_interval(0.8, 2000)[0] < hi - lo  # more examples, narrower
