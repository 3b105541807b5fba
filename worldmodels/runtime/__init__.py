"""The parallel runtime: a pool of workers, local processes or Ray actors (pool.py), episodes played
by the numpy agent in those workers (rollout.py), and the CMA-ES loop (evolution.py)."""
