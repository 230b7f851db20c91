"""Models: offline backbone resolution, the summary-conditioned reward model, P[Love], tiny test models."""
