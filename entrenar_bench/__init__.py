"""entrenar-bench: knowledge-distillation benchmarking with real training and real statistics."""

__version__ = "0.1.0"
