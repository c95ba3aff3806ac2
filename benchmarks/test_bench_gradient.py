"""One gradient evaluation by each kernel of the four families, and one read of X.

Binary dense: each kernel against NumPy and the read bandwidth (``gradient``
and ``scaling`` groups). Multinomial dense (10 classes, on digits and on the
tier's training shape): the contract's fused gradient against the same sums in
NumPy. CSR, binary and multinomial: against scipy's two sparse products.
"""

import numpy as np

from ._common import cached_data
from ._workloads import (
    contract_sums,
    gradient_call,
    multiclass_data,
    multinomial_gradient_call,
    multinomial_gradient_inputs,
    numpy_softmax_sums,
    small_multiclass_data,
    sparse_data,
    sparse_gradient_calls,
    sparse_n_chunks,
)


def test_gradient(benchmark, gradient_case):
    X, y = cached_data(gradient_case.n, gradient_case.d, gradient_case.dtype)
    benchmark.group = gradient_case.group
    benchmark.extra_info["X_bytes"] = X.nbytes
    benchmark(gradient_call(gradient_case.name, X, y))


def test_scaling(benchmark, scaling_case):
    X, y = cached_data(scaling_case.n, scaling_case.d, scaling_case.dtype)
    benchmark.group = scaling_case.group
    benchmark.extra_info.update(n=scaling_case.n, X_bytes=X.nbytes)
    benchmark(gradient_call(scaling_case.name, X, y))


def test_multinomial_gradient(benchmark, multinomial_gradient_case):
    case = multinomial_gradient_case
    X, y = multiclass_data(case.n, case.d)
    benchmark.group = case.group
    benchmark.extra_info["X_bytes"] = X.nbytes
    benchmark(multinomial_gradient_call(case.name, X, y))


def test_sparse_gradient(benchmark, sparse_gradient_case):
    case = sparse_gradient_case
    loss = case.family.split("-")[0]
    X, y = sparse_data(loss, case.n, case.d, case.nnz_per_row, case.dtype)
    benchmark.group = case.group
    benchmark.extra_info.update(nnz=X.nnz, n_chunks=sparse_n_chunks(loss, case.n, case.d))
    benchmark(sparse_gradient_calls(X, y, (case.name,))[case.name])


def test_multinomial_fused_gradient_matches_the_numpy_baseline():
    """Both timed computations give the same sums: a benchmark of wrong code is void."""
    X, y = small_multiclass_data(3000, 12)
    params = multinomial_gradient_inputs(12)
    expected = numpy_softmax_sums(X, y, *params)
    actual = contract_sums(X, y, *params)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)
