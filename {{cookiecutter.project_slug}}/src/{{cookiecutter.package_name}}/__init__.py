"""The project. Yours to change: models/, data/, configs/ (and train.py, eval.py: what a run does).
The template's machinery, which you rarely need to open: harness/ (see README.md, "Where things are")."""

import atexit

from {{cookiecutter.package_name}}.harness import cluster

# Under SLURM, note the requeue signal from the first import on (train.py and eval.py import this first):
# arriving during the imports or the DDP rendezvous, its default action would end the job with nothing saved.
cluster.watch_requeue_signal()
# Every process, ddp_spawn's workers included (they start here, not in harness/launch.py): see the function.
atexit.register(cluster.end_process_group)
