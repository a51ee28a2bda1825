"""One module per policy; each opens with the real commands it models and what it abstracts."""
