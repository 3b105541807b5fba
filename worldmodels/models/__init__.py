"""The agent's models: V (vae.py, vaegan.py), M (memory/), C (controller.py), their numpy runtime for
rollout workers (numpy_agent.py), the dream M generates (dream.py), and loading them from a run
directory (loading.py). Nothing here imports a stage or the command line."""
