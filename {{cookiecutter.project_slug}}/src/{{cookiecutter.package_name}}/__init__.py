"""The project's code: models/, data/, strategies/, callbacks/, loggers/ and utils/ (see README.md)."""

import atexit

from {{cookiecutter.package_name}}.utils import cluster

# Under SLURM, note the requeue signal from the first import on (train.py and eval.py import this first):
# arriving during the imports or the DDP rendezvous, its default action would end the job with nothing saved.
cluster.watch_requeue_signal()
# Every process, ddp_spawn's workers included (they start here, not in utils/launch.py): see the function.
atexit.register(cluster.end_process_group)
