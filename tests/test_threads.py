"""Thread pools: sized to the CPUs a process may use, reaching the libraries, idle threads sleeping."""

import json
import os
import subprocess

import pytest

from crm_modes.serve.spark import task_environment
from crm_modes.shared.threads import _cgroup_quota, available_cpus


def test_a_cgroup_quota_caps_the_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_quota(tmp_path) == 2.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _cgroup_quota(tmp_path) is None


def test_available_cpus_follow_the_affinity():
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))


def _info(cli, *args, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "OPENBLAS_", "MKL_"))}
    result = subprocess.run(
        [cli, "info", "--json", *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_option_reaches_openmp_and_blas(cli, threads):
    info = _info(cli, "--threads", str(threads))
    assert info["threads"] == threads
    assert info["omp_wait_policy"] == "PASSIVE"
    apis = {pool["user_api"] for pool in info["thread_pools"]}
    assert {"openmp", "blas"} <= apis
    assert all(pool["num_threads"] == threads for pool in info["thread_pools"])


def test_default_is_one_thread_zero_is_every_cpu_and_the_environment_wins(cli):
    assert _info(cli)["threads"] == 1
    everything = _info(cli, "--threads", "0")
    assert everything["threads"] == available_cpus()
    assert all(pool["num_threads"] == available_cpus() for pool in everything["thread_pools"])
    info = _info(cli, OMP_NUM_THREADS="2", OMP_WAIT_POLICY="ACTIVE")
    assert info["threads"] == 2
    assert info["omp_wait_policy"] == "ACTIVE"  # an explicit setting is respected


def test_spark_tasks_get_one_thread_and_a_sleeping_wait_policy():
    settings = task_environment(1)
    assert settings["spark.executorEnv.OMP_NUM_THREADS"] == "1"
    assert settings["spark.executorEnv.OPENBLAS_NUM_THREADS"] == "1"
    assert settings["spark.executorEnv.OMP_WAIT_POLICY"] == "PASSIVE"
