"""The research workflow: artifacts, pre-registration, sweep links, verifiable bundles.

``artifact.yaml`` holds a study's identity, its pre-registration (with dated amendments) and
the sweeps linked to it; ``research bundle`` packs it with the runs, an environment record and
a SHA-256 manifest that ``research verify`` checks.
"""
