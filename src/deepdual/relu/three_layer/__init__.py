"""Parallel three-layer ReLU networks on arbitrary data: the convex program of Ergen & Pilanci
(arXiv 2110.05518) solved by column generation with a proven dual constraint (docs/three_layer.md)."""
