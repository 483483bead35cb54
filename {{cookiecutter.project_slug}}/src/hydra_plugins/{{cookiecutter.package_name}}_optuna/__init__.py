"""`hydra/sweeper=optuna`: this project's Optuna sweeper as a Hydra plugin (see optuna_sweeper.py)."""
