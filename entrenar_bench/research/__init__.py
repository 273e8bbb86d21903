"""The research workflow: artifacts, pre-registration, claims and their verdicts, sweep links, verifiable bundles.

``artifact.yaml`` holds a study's identity, its pre-registration (with its claims, analysis plan and dated
amendments) and the sweeps linked to it; ``research check`` gives each claim a verdict on the linked sweeps;
``research bundle`` packs it with the runs, an environment record, the verdicts and a SHA-256 manifest that
``research verify`` checks.
"""
