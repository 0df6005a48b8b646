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
    for check, expected in (
        (check_tensor, torch.zeros(2)),
        (check_int, 3),
        (check_float, 1.5),
        (check_tuple_of_ints, (1, 2)),
    ):
        with pytest.raises(GradingError, match="expected"):
            check(AlwaysEqual(), expected)


def test_tensor_subclass_cannot_override_comparison():
    sneaky = torch.ones(3).as_subclass(SneakyTensor)
    with pytest.raises(GradingError, match="values differ"):
        check_tensor(sneaky, torch.zeros(3))


def test_messages_say_expected_got_and_hint():
    with pytest.raises(
        GradingError, match=r"conv output: expected shape \(2, 8, 5, 5\), got \(2, 8, 6, 6\): check padding"
    ):
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


# ------------------------------------------------------------------------------------------ plain data
def test_answers_cross_as_plain_data_only():
    from cvkit.grading import Opaque, Raised, dump_plain, load_plain, outcome

    class Sneaky(torch.Tensor):
        pass

    answer = {
        "t": torch.arange(6.0).view(2, 3).as_subclass(Sneaky),
        "b": torch.tensor([True]),
        "bf": torch.ones(2, dtype=torch.bfloat16),
        "n": 3,
        "f": float("nan"),
        "tup": (1, 2.5, None, "s"),
        "np": np.arange(3, dtype=np.int64),
        "np1": np.float32(0.5),
        "size": torch.Size([2, 3]),
        "obj": AlwaysEqual(),
        "raised": outcome(lambda: int("x")),
        "nested": [[{"k": [1]}]],
    }
    got = load_plain(*dump_plain(answer))
    assert type(got["t"]) is torch.Tensor and torch.equal(got["t"], torch.arange(6.0).view(2, 3)), (
        "a subclass comes back plain"
    )
    assert got["bf"].dtype == torch.bfloat16 and got["b"].dtype == torch.bool
    assert got["n"] == 3 and type(got["n"]) is int and np.isnan(got["f"])
    assert got["tup"] == (1, 2.5, None, "s") and got["size"] == (2, 3)
    assert isinstance(got["np"], np.ndarray) and got["np"].tolist() == [0, 1, 2] and type(got["np1"]) is np.float32
    assert isinstance(got["obj"], Opaque) and got["obj"].type_name == "AlwaysEqual"
    assert (
        isinstance(got["raised"], Raised)
        and got["raised"].name == "ValueError"
        and "builtins.ValueError" in got["raised"].classes
    )
    assert got["nested"] == [[{"k": [1]}]]
    with pytest.raises(GradingError, match="expected a torch.Tensor, got AlwaysEqual"):
        check_tensor(got["obj"], torch.zeros(1))
    with pytest.raises(ValueError, match="malformed"):
        load_plain(b'{"__cvkit__": "pickle", "v": 1}', b"")
    with pytest.raises(ValueError, match="more than"):
        dump_plain(list(range(200_000)))


def double(x):
    """A student's function, defined at the top level of their notebook (here: of this module)."""
    return 2 * x


def test_run_test_runs_all_three_parts_in_the_students_notebook(capsys):
    from cvkit.grading import run_test

    def inputs():
        return {"x": torch.ones(3)}

    def answers(student, x):
        x.mul_(10)  # a student's function that changes its input does not change the grader's copy
        return student.double(x)

    def checks(got, x):
        check_tensor(got, 2 * 10 * x, "double(x)")

    run_test(inputs, answers, checks)
    assert "all checks of this test passed" in capsys.readouterr().out
    with pytest.raises(GradingError, match="your notebook defines no 'triple'"):
        run_test(None, lambda student: student.triple(1), lambda got: None)
