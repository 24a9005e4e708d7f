"""gunicorn is sized from the CPUs the process may use, not the host's count."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from solarproof_portal.cpus import cgroup_cpu_quota, usable_cpus
from tests.support.processes import ROOT, production_env


def _cgroup_fs(tmp_path: Path, proc_self_cgroup: str, files: dict[str, str]) -> dict[str, Path]:
    """A cgroup file system as the kernel lays it out, with the given files in it."""
    root = tmp_path / "sys/fs/cgroup"
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content + "\n")
    root.mkdir(parents=True, exist_ok=True)
    (tmp_path / "self-cgroup").write_text(proc_self_cgroup)
    return {"cgroup_root": root, "proc_self_cgroup": tmp_path / "self-cgroup"}


def test_a_two_cpu_container_on_a_32_core_host_counts_two_cpus(tmp_path):
    # docker run --cpus 2 on cgroup v2: the container sees its own cgroup at the root.
    paths = _cgroup_fs(tmp_path, "0::/\n", {"cpu.max": "200000 100000"})
    assert cgroup_cpu_quota(**paths) == 2.0
    # The affinity still allows all 32 of the host's cores; the quota decides.
    assert min(32, usable_cpus(**paths)) == min(len(os.sched_getaffinity(0)), 2)


def test_a_quota_below_the_cpus_the_process_may_run_on_wins(tmp_path):
    paths = _cgroup_fs(tmp_path, "0::/\n", {"cpu.max": "100000 100000"})
    assert usable_cpus(**paths) == 1


def test_a_parents_quota_counts_and_the_tightest_wins(tmp_path):
    # Kubernetes: the pod's limit on the parent, none on the container's own cgroup.
    paths = _cgroup_fs(
        tmp_path,
        "0::/kubepods/pod7/c1\n",
        {"kubepods/pod7/cpu.max": "150000 100000", "kubepods/pod7/c1/cpu.max": "max 100000", "cpu.max": "max 100000"},
    )
    assert cgroup_cpu_quota(**paths) == 1.5


def test_cgroup_v1_quota_is_read_even_when_the_path_is_the_hosts_view(tmp_path):
    # docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names
    # /docker/<id>, but the container's own cgroup is mounted at the controller's root.
    paths = _cgroup_fs(
        tmp_path,
        "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
    )
    assert cgroup_cpu_quota(**paths) == 1.5
    assert usable_cpus(**paths) == min(len(os.sched_getaffinity(0)), 2)  # 1.5 CPUs: rounded up


@pytest.mark.parametrize(
    ("self_cgroup", "files"),
    [
        ("0::/\n", {"cpu.max": "max 100000"}),
        ("4:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}),
        ("0::/\n", {}),
        ("", {}),
    ],
    ids=["v2 unlimited", "v1 unlimited", "no cpu controller files", "no cgroups"],
)
def test_without_a_quota_the_cpus_the_process_may_run_on_count(tmp_path, self_cgroup, files):
    paths = _cgroup_fs(tmp_path, self_cgroup, files)
    assert cgroup_cpu_quota(**paths) is None
    assert usable_cpus(**paths) == len(os.sched_getaffinity(0))


def _gunicorn_workers(prefix: list[str]) -> str:
    gunicorn_bin = str(Path(sys.executable).parent / "gunicorn")
    printed = subprocess.run(  # noqa: S603
        [*prefix, gunicorn_bin, "--config", "solarproof_portal/gunicorn.conf.py", "--print-config", "x"],
        cwd=ROOT,
        env={name: value for name, value in production_env().items() if name != "GUNICORN_WORKERS"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return dict(re.findall(r"^(\w+)\s+= (.*)$", printed.stdout, re.M))["workers"]


@pytest.mark.skipif(not shutil.which("taskset"), reason="taskset (util-linux) is not installed")
def test_gunicorn_pinned_to_one_cpu_starts_two_workers():
    assert _gunicorn_workers(["taskset", "--cpu-list", "0"]) == "2"
    assert _gunicorn_workers([]) == str(2 * usable_cpus())
