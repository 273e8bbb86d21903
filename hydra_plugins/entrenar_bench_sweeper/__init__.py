"""entrenar-bench's Hydra sweeper plugin (``hydra/sweeper=checked``): see ``checked_sweeper.py``."""
