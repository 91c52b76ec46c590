"""model/linear.py: x Wᵀ + b, computed as W xᵀ for decoding's few bf16 rows on CPU."""
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from model.linear import SKINNY_ROWS, Linear, linear


class RecordCalls(TorchFunctionMode):
    """Names of the torch functions called inside the block."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def reference(x, weight, bias):
    """x Wᵀ + b in float64, and the sum of |terms| each output adds up (the scale of rounding errors)."""
    exact = x.double() @ weight.double().t() + (0 if bias is None else bias.double())
    return exact, x.double().abs() @ weight.double().abs().t()


@pytest.mark.parametrize("leading", [(1,), (3,), (2, 1), (4, 4), (SKINNY_ROWS,)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_bf16_product_of_few_rows_matches_a_float64_reference(leading, with_bias):
    torch.manual_seed(sum(leading) + with_bias)
    x = torch.randn(*leading, 37).bfloat16()
    weight, bias = torch.randn(53, 37).bfloat16(), torch.randn(53).bfloat16() if with_bias else None
    exact, scale = reference(x, weight, bias)
    got = linear(x, weight, bias)
    # One bf16 rounding of the output, plus fp32 accumulation over 37 terms.
    assert (got.double() - exact).abs().le(2**-8 * exact.abs() + 1e-5 * scale + 1e-6).all()


@pytest.mark.parametrize("leading", [(1,), (2, 3), (SKINNY_ROWS,)])
def test_bf16_product_of_few_rows_comes_back_contiguous_in_x_times_w_transposed_layout(leading):
    x, weight = torch.randn(*leading, 24).bfloat16(), torch.randn(40, 24).bfloat16()
    got = linear(x, weight)
    assert got.shape == (*leading, 40) and got.is_contiguous()


@pytest.mark.parametrize("leading", [(2, 3), (SKINNY_ROWS, 1)])
def test_bf16_product_of_few_rows_may_skip_the_copy_into_that_layout(leading):
    x, weight = torch.randn(*leading, 24).bfloat16(), torch.randn(40, 24).bfloat16()
    any_layout = linear(x, weight, contiguous=False)
    assert any_layout.shape == (*leading, 40) and not any_layout.is_contiguous()
    assert torch.equal(any_layout, linear(x, weight))


@pytest.mark.parametrize("rows, expected", [(1, "mv"), (2, "matmul"), (SKINNY_ROWS, "matmul"),
                                            (SKINNY_ROWS + 1, "linear")])
def test_bf16_inference_uses_w_times_x_transposed_up_to_skinny_rows(rows, expected):
    x, weight = torch.randn(rows, 24).bfloat16(), torch.randn(40, 24).bfloat16()
    with RecordCalls() as calls:
        linear(x, weight)
    assert expected in calls.names and ("linear" in calls.names) == (expected == "linear")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_other_dtypes_keep_f_linear(dtype):
    x, weight = torch.randn(1, 24, dtype=dtype), torch.randn(40, 24, dtype=dtype)
    with RecordCalls() as calls:
        got = linear(x, weight)
    assert calls.names[-1] == "linear" and torch.equal(got, F.linear(x, weight))


def test_a_product_that_needs_gradients_goes_through_autograd_unchanged():
    x = torch.randn(2, 24).bfloat16().requires_grad_()
    weight = torch.randn(40, 24).bfloat16()
    with RecordCalls() as calls:
        linear(x, weight).float().square().sum().backward()
    expected = x.detach().clone().requires_grad_()
    F.linear(expected, weight).float().square().sum().backward()
    assert "linear" in calls.names and torch.equal(x.grad, expected.grad)


def test_linear_module_keeps_nn_linear_parameters_and_state_dict_keys():
    layer = Linear(24, 40, bias=True)
    assert isinstance(layer, torch.nn.Linear) and set(layer.state_dict()) == {"weight", "bias"}
    x = torch.randn(3, 24)
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
