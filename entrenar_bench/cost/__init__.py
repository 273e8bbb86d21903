"""Cost-performance analysis: GPU cost models, measured configuration points, Pareto frontier, recommendations."""
