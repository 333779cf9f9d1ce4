"""``hydra/sweeper=dse``: Optuna 5 over design fields written as sweep overrides (see
``dse_sweeper.py``). Heavy imports live in ``dse.search``, loaded only when a sweep runs."""
