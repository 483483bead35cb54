"""Plumbing shared by train.py and eval.py: Hydra entry point, config checks, run summary."""
