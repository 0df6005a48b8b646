"""cvkit.grading cannot be fooled by a cheap object and tells the student what to fix."""

import numpy as np
import pytest
import torch

from cvkit.grading import GradingError, check_float, check_int, check_shape, check_tensor, check_tuple_of_ints


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


class SneakyTensor(torch.Tensor):
    def __eq__(self, other):
        return torch.ones_like(self, dtype=torch.bool)


def test_always_equal_object_fails_every_check():
    for check, expected in ((check_tensor, torch.zeros(2)), (check_int, 3), (check_float, 1.5), (check_tuple_of_ints, (1, 2))):
        with pytest.raises(GradingError, match="expected"):
            check(AlwaysEqual(), expected)


def test_tensor_subclass_cannot_override_comparison():
    sneaky = torch.ones(3).as_subclass(SneakyTensor)
    with pytest.raises(GradingError, match="values differ"):
        check_tensor(sneaky, torch.zeros(3))


def test_messages_say_expected_got_and_hint():
    with pytest.raises(GradingError, match=r"conv output: expected shape \(2, 8, 5, 5\), got \(2, 8, 6, 6\): check padding"):
        check_tensor(torch.zeros(2, 8, 6, 6), torch.zeros(2, 8, 5, 5), "conv output", hint="check padding")
    with pytest.raises(GradingError, match="expected dtype torch.float32, got torch.float64"):
        check_tensor(torch.zeros(2, dtype=torch.float64), torch.zeros(2))
    with pytest.raises(GradingError, match=r"max abs error 0.5 at index \(1,\)"):
        check_tensor(torch.tensor([0.0, 0.5]), torch.zeros(2))
    with pytest.raises(GradingError, match="NaN"):
        check_tensor(torch.tensor([float("nan")]), torch.zeros(1))
    with pytest.raises(GradingError, match="values differ"):
        check_tensor(torch.tensor([1, 2]), torch.tensor([1, 3]))


def test_passing_cases():
    check_tensor(torch.ones(2, 3) + 1e-7, torch.ones(2, 3))
    check_int(np.int64(4), 4)
    check_float(torch.tensor(0.25), 0.25)
    check_tuple_of_ints([2, 3], (2, 3))
    check_shape(torch.zeros(1, 2), (1, 2))


def test_bool_is_not_an_int():
    with pytest.raises(GradingError, match="expected an int, got bool"):
        check_int(True, 1)
    with pytest.raises(GradingError, match="expected an int, got float"):
        check_int(3.0, 3)
