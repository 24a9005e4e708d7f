"""How many CPUs this process may really use, for sizing gunicorn (gunicorn.conf.py).

``os.cpu_count()`` is the host's: a container limited to 2 CPUs on a 32-core host would
start 64 workers, each with its own database connections. The answer here is the
smallest of the CPUs the process may be scheduled on (``os.sched_getaffinity``, which
``--cpuset-cpus`` and ``taskset`` set) and the CPU quota of its cgroup or any parent
(``docker run --cpus``, Kubernetes' CPU limit): cgroup v2's ``cpu.max``, cgroup v1's
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``. A fractional quota counts up (1.5 -> 2);
never less than 1. Standard library only: the gunicorn master imports it before Django.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(*, cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root=cgroup_root, proc_self_cgroup=proc_self_cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota(*, cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The tightest CPU quota (in CPUs) on this process's cgroup and its parents; None
    when there is none or no cgroup file system to read."""
    try:
        lines = proc_self_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "0::/path"
            quotas += [_v2_quota(directory) for directory in _candidates(cgroup_root, path)]
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            for mount in (cgroup_root / controllers, cgroup_root / "cpu", cgroup_root / "cpu,cpuacct"):
                if mount.is_dir():
                    quotas += [_v1_quota(directory) for directory in _candidates(mount, path)]
                    break
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def _candidates(mount: Path, path: str) -> list[Path]:
    """The cgroup's directory and its parents up to the mount. Inside a container the
    mount is often the container's own cgroup while the path still names it from the
    host's view, so the mount itself is always one of them."""
    parts = [part for part in path.strip("/").split("/") if part and part != ".."]
    directories = [mount.joinpath(*parts[:depth]) for depth in range(len(parts), 0, -1)]
    return [directory for directory in directories if directory.is_dir()] + [mount]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")  # "max 100000" or "200000 100000"
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return int(quota) / int(period)


def _v1_quota(directory: Path) -> float | None:
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if not quota or not period or not period.isdigit() or int(period) == 0:
        return None
    if quota.startswith("-") or not quota.isdigit():  # -1: no limit
        return None
    return int(quota) / int(period)
