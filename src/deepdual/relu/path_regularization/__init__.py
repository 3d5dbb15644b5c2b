"""Path-regularized parallel ReLU networks (depth 2 and 3) on small data: the exact convex program of
Ergen & Pilanci (arXiv 2110.09548), its exact dual constraint and certificate (docs/path_regularization.md)."""
