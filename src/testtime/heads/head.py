"""A value head: logistic regression on standardised features, fitted to soft labels.

Loss = mean binary cross-entropy against labels in [0, 1] + (alpha / 2) ||w||^2,
minimised by L-BFGS (scipy). alpha is chosen by cross-validation over questions,
so steps of one question never sit on both sides of a split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class ValueHead:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(correct) for each row of features."""
        return expit(((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.weights + self.bias)


def fit_value_head(features: np.ndarray, labels: Sequence[float], alpha: float) -> ValueHead:
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"fit_value_head: need one label per feature row, got {x.shape} and {y.shape}")
    if ((y < 0) | (y > 1)).any():
        raise ValueError("fit_value_head: labels must lie in [0, 1]")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale

    def objective(theta):
        w, b = theta[:-1], theta[-1]
        logits = z @ w + b
        loss = np.mean(np.logaddexp(0.0, logits) - y * logits) + 0.5 * alpha * w @ w
        residual = (expit(logits) - y) / len(y)
        return loss, np.append(z.T @ residual + alpha * w, residual.sum())

    theta = minimize(objective, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B",
                     options={"maxiter": 500}).x
    return ValueHead(mean=mean, scale=scale, weights=theta[:-1], bias=float(theta[-1]))


def log_loss(predicted: np.ndarray, labels: Sequence[float]) -> float:
    p = np.clip(predicted, 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def out_of_fold(features: np.ndarray, labels: Sequence[float], groups: Sequence[str], alpha: float,
                folds: int = 4) -> np.ndarray:
    """Each row's prediction by a head fitted on the other folds (folds split by group)."""
    y = np.asarray(labels, dtype=np.float64)
    names = sorted(set(groups))
    fold_of = {g: i % folds for i, g in enumerate(names)}
    fold = np.array([fold_of[g] for g in groups])
    predicted = np.zeros(len(y))
    for f in range(min(folds, len(names))):
        test = fold == f
        predicted[test] = fit_value_head(features[~test], y[~test], alpha).predict(features[test])
    return predicted


def choose_alpha(features: np.ndarray, labels: Sequence[float], groups: Sequence[str],
                 folds: int = 3, alphas: Sequence[float] = ALPHAS) -> tuple[float, dict[float, float]]:
    """The alpha with the lowest cross-validated log loss, folds split by group; every alpha's loss."""
    losses = {alpha: log_loss(out_of_fold(features, labels, groups, alpha, folds), labels) for alpha in alphas}
    return min(losses, key=losses.get), losses
