"""PySpark's Python worker daemon, with the scoring engine imported once before it forks workers.

Spark starts one daemon per executor (``spark.python.daemon.module``, set by
:func:`crm_modes.serve.spark.spark_session`), and the daemon forks a worker per task slot. With
the stock daemon each worker imports the engine itself (pandas, pyarrow, MLflow, scikit-learn,
LightGBM, skops): a third of a worker's time, paid once per worker while the workers compete for
the same cores (docs/decisions/009-spark-tasks-read-their-own-pieces.md). Imported here, the forks share it.
Importing starts no thread pool (OpenMP and OpenBLAS start theirs on first use, sized by the
executor's environment), so forking afterwards is as safe as the stock daemon's own forks.
What the import built is frozen out of the collector's full passes
(:func:`crm_modes.shared.collector_pause.long_lived`): a fork's collections neither walk it nor write to
(and so copy) the pages it shares with the daemon; reference counting still may.
"""

from pyspark.daemon import manager

from crm_modes.shared.collector_pause import long_lived

with long_lived():  # frozen before the forks: their collections never walk what they share
    import mlflow.pyfunc  # noqa: F401 - imported for the forks to share

    import crm_modes.serve.spark  # noqa: F401 - imported for the forks to share

if __name__ == "__main__":
    manager()
