"""Logistic-regression pieces the linear heads share: the logit, and a weighted L2 fit with a fixed per-row offset
(what a product-of-experts length debias needs and sklearn lacks)."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize


def logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def fit_logistic(X, y: np.ndarray, w: np.ndarray, C: float, *, offset: np.ndarray | None = None,
                 max_iter: int = 2000, tol: float = 1e-4) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression (sklearn's objective, unpenalised intercept) with an optional fixed
    per-row ``offset`` in the logit: the offset is what a product-of-experts debias needs and sklearn lacks."""
    n, d = X.shape
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=np.float64)

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, b = theta[:d], theta[d]
        eta = X @ beta + b + off
        # log(1 + e^eta) - y * eta, computed stably
        loss = float(C * np.sum(w * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * beta @ beta)
        r = C * w * (0.5 * (1.0 + np.tanh(0.5 * eta)) - y)
        return loss, np.concatenate([X.T @ r + beta, [r.sum()]])

    res = minimize(loss_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
    return np.asarray(res.x[:d], dtype=np.float64), float(res.x[d])
