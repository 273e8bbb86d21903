"""entrenar-bench: knowledge-distillation benchmarking with real training and real statistics.

The programmatic API (imported on first use, so ``import entrenar_bench`` stays light)::

    from entrenar_bench import temperature_sweep, CostModel, CostPerformanceAnalysis, Constraints
"""

from importlib import import_module

__version__ = "0.1.0"

_API = {
    "temperature_sweep": "entrenar_bench.api",
    "alpha_sweep": "entrenar_bench.api",
    "compare_strategies": "entrenar_bench.api",
    "ablation_study": "entrenar_bench.api",
    "SweepResult": "entrenar_bench.api",
    "export_student": "entrenar_bench.api",
    "CostModel": "entrenar_bench.cost.model",
    "CostPerformanceAnalysis": "entrenar_bench.cost.analysis",
    "Constraints": "entrenar_bench.cost.analysis",
    "ConfigPoint": "entrenar_bench.cost.analysis",
    "PricedPoint": "entrenar_bench.cost.analysis",
    "Recommendation": "entrenar_bench.cost.analysis",
    "points_from_sweep": "entrenar_bench.cost.points",
    "run_study": "entrenar_bench.cost.study",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'entrenar_bench' has no attribute {name!r}")
