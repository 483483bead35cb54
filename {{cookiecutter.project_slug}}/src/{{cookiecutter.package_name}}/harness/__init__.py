"""The machinery that makes runs safe; you rarely need to open it. Each module names the gap it fills.

- launch.py: the Hydra entry point of train.py and eval.py; one run, one folder, however many processes
- checks.py: mistakes in a config or the environment, reported in one sentence before any work starts
- build.py: a run's data, model and trainer from its checked config (Lightning imported only then)
- resume.py: `ckpt_path=last` finds the newest checkpoint of the newest run
- module.py: the base of the LightningModules in models/: a sharded network's plan, clipping, samples
- data.py: what a DataModule in data/ imports (the resumable loader, the split of a fold, ConfigError)
- folds.py: training and validation examples from one fold of k (data.num_folds, data.fold)
- resumable_loader.py: a training DataLoader that a mid-epoch checkpoint resumes exactly (torchdata's)
- cluster.py: SLURM, torchrun and mpirun facts (node counts, requeue signal) and a clean process-group exit
- console.py: keeps the console to lines a person can act on
- mesh.py: what a network offers to be split over trainer=model_parallel's mesh (a typed Protocol)
- sharded.py: gradient clipping across the mixed layouts that tensor parallelism makes (trainer=model_parallel)
- consolidate.py: one ordinary .ckpt file from a sharded run's checkpoint folder
- sweep_resume.py: a grid sweep (`-m`) launched again into its folder skips finished jobs, continues the others
- search.py: hyperparameter search with Optuna (hparams_search=...): trials pruned, a search resumed
- callbacks/, loggers/, strategies/: what Lightning lacks, chosen in configs/callbacks, logger and trainer
"""
