"""Mutation testing of the modules that guard customers and the log (mutmut 3).

Each module in mutation/modules.toml is mutated on its own, in a scratch copy of the
project (.mutants/<module>/), and each mutant is tested with that module's own tests only.
A mutant that survives must be listed in mutation/equivalent.toml with the reason it
changes nothing anyone could observe; anything else is a missing test.

    python mutation/run.py                      # every module (make mutants)
    python mutation/run.py customers/ratelimit.py
    python mutation/run.py --changed-since REV  # only modules changed since REV (CI)
    python mutation/run.py --ratchet            # fail below mutation/ratchet.json, not 85 %
    python mutation/run.py --update-ratchet     # raise the ratchet to today's scores

Scores: killed (or timed out) / all mutants; "explained" adds the listed equivalents.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "mutation"
SCRATCH = ROOT / ".mutants"
TARGET = 0.85
# What the scratch copy needs for Django to start and the tests to run.
COPIED = ("accounts", "customers", "solarproof_portal", "templates", "static", "tests", "manage.py")
SOURCE_PATHS = ["accounts", "customers", "solarproof_portal"]
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}


@dataclass
class Result:
    module: str
    statuses: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, str] = field(default_factory=dict)
    unexplained: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.statuses)

    @property
    def killed(self) -> int:
        return sum(status in DETECTED for status in self.statuses.values())

    @property
    def score(self) -> float:
        return self.killed / self.total if self.total else 1.0

    @property
    def explained(self) -> float:
        return (self.killed + len(self.equivalent)) / self.total if self.total else 1.0


def modules() -> list[dict]:
    return tomllib.loads((HERE / "modules.toml").read_text())["module"]


def equivalents() -> list[dict]:
    return tomllib.loads((HERE / "equivalent.toml").read_text()).get("mutant", [])


def _changed_lines(diff: str) -> tuple[str, ...]:
    """A mutant's identity that survives renumbering: the lines it removes and adds."""
    lines = [
        line[0] + " " + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return tuple(lines)


def _function(mutant: str) -> str:
    """``customers.ratelimit.x__count_local__mutmut_3`` -> ``_count_local`` (methods keep
    their class: ``xǁClassǁmethod__mutmut_1`` -> ``Class.method``)."""
    name = mutant.rsplit(".", 1)[1]
    name = re.sub(r"__mutmut_\d+$", "", name)
    name = name.removeprefix("x_").removeprefix("xǁ")
    return name.replace("ǁ", ".").strip(".")


def _workdir(module: str) -> Path:
    work = SCRATCH / module.replace("/", "__").removesuffix(".py")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".test-db.sqlite3*", "test-artifacts")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    return work


def _configure(work: Path, module: str, tests: list[str]) -> None:
    project = (ROOT / "pyproject.toml").read_text()
    section = {
        "source_paths": SOURCE_PATHS,
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "--timeout=60"],
        "also_copy": ["templates", "static", "manage.py"],
    }
    lines = ["", "[tool.mutmut]", *(f"{key} = {json.dumps(value)}" for key, value in section.items())]
    (work / "pyproject.toml").write_text(project + "\n".join(lines) + "\n")


def _mutmut(work: Path, *args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    mutmut = Path(sys.executable).with_name("mutmut")
    output = log.open("w") if log else subprocess.PIPE
    try:
        return subprocess.run(  # noqa: S603 - our own venv's mutmut
            [str(mutmut), *args], cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT, text=True, check=False
        )
    finally:
        if log:
            output.close()


def run_module(module: str, tests: list[str], *, max_children: int, known: list[dict]) -> Result:
    started = time.monotonic()
    work = _workdir(module)
    _configure(work, module, tests)
    log = work / "mutmut.log"
    finished = _mutmut(work, "run", "--max-children", str(max_children), log=log)
    result = Result(module=module, seconds=time.monotonic() - started)
    meta = work / "mutants" / (module + ".meta")
    if finished.returncode != 0 or not meta.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"mutation: mutmut failed on {module} (log: {log}):\n{tail}")
    sys.path.insert(0, str(Path(sys.executable).parent.parent))
    from mutmut.stats import status_by_exit_code

    codes = json.loads(meta.read_text())["exit_code_by_key"]
    result.statuses = {name: status_by_exit_code[code] for name, code in codes.items()}
    listed = {
        (entry["function"], tuple(entry["diff"])): entry["reason"] for entry in known if entry["module"] == module
    }
    for name, status in sorted(result.statuses.items()):
        if status in DETECTED:
            continue
        diff = _mutmut(work, "show", name).stdout
        key = (_function(name), _changed_lines(diff))
        if key in listed:
            result.equivalent[name] = listed[key]
        else:
            result.unexplained.append((name, f"{status}: " + " | ".join(key[1])))
    return result


def changed_since(revision: str) -> set[str]:
    """Modules whose code or own tests changed since ``revision`` (committed or not)."""
    names = subprocess.run(  # noqa: S603
        ["git", "diff", "--name-only", revision, "--"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = set(names)
    return {entry["path"] for entry in modules() if names & {entry["path"], *entry["tests"]}}


def fingerprint(module: str, tests: list[str]) -> str:
    """What a module's score depends on: its code and its tests."""
    digest = hashlib.sha256()
    for name in (module, *tests):
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _ratchet() -> dict[str, dict]:
    path = HERE / "ratchet.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="paths as in mutation/modules.toml (default: all)")
    parser.add_argument("--changed-since", metavar="REV", help="only modules whose code or tests changed since REV")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--ratchet", action="store_true", help="fail only below mutation/ratchet.json")
    parser.add_argument("--update-ratchet", action="store_true", help="write today's scores as the new floor")
    parser.add_argument(
        "--ci",
        action="store_true",
        help="CI: only modules marked ci = true whose code or tests differ from when their ratchet "
        "was recorded; fail only below the ratchet",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    table = {entry["path"]: entry["tests"] for entry in modules()}
    selected = args.modules or list(table)
    unknown = [name for name in selected if name not in table]
    if unknown:
        parser.error(f"not in mutation/modules.toml: {', '.join(unknown)}")
    if args.changed_since:
        changed = changed_since(args.changed_since)
        selected = [name for name in selected if name in changed]
    ratchet = _ratchet()
    if args.ci:
        args.ratchet = True
        in_ci = {entry["path"] for entry in modules() if entry.get("ci")}
        changed = [
            name for name in selected if ratchet.get(name, {}).get("fingerprint") != fingerprint(name, table[name])
        ]
        for name in changed:
            if name not in in_ci:
                print(f"mutation: {name} is not checked in CI (too slow): make mutants MODULES={name}")
        selected = [name for name in changed if name in in_ci]
    if not selected:
        print("mutation: no module to test (each module's code and tests are as when its ratchet was recorded)")
        return 0

    known = equivalents()
    results = []
    failed = False
    for module in selected:
        result = run_module(module, table[module], max_children=args.max_children, known=known)
        results.append(result)
        floor = ratchet.get(module, {}).get("score", 0.0)
        below = result.score + 1e-9 < (floor if args.ratchet else max(TARGET, floor))
        print(
            f"{module:36} {result.killed:3}/{result.total:3} killed {result.score:6.1%}  "
            f"+{len(result.equivalent)} equivalent = {result.explained:6.1%}  "
            f"(ratchet {floor:.1%}, {result.seconds:.0f} s){'  BELOW' if below else ''}",
            flush=True,
        )
        for name, detail in result.unexplained:
            print(f"  not killed, not in mutation/equivalent.toml: {name}: {detail}")
        failed |= below or (bool(result.unexplained) and not args.ratchet)
    if args.update_ratchet:
        ratchet = _ratchet()  # afresh: another run may have written it meanwhile
        for result in results:
            ratchet[result.module] = {
                # Never lowered here: a lower score is a decision, made by editing the file.
                "score": max(ratchet.get(result.module, {}).get("score", 0.0), round(result.score - 0.0005, 3)),
                "mutants": result.total,
                "killed": result.killed,
                "equivalent": len(result.equivalent),
                "seconds": round(result.seconds),
                "fingerprint": fingerprint(result.module, table[result.module]),
            }
        (HERE / "ratchet.json").write_text(json.dumps(dict(sorted(ratchet.items())), indent=2) + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "module": r.module,
                        "mutants": r.total,
                        "killed": r.killed,
                        "equivalent": len(r.equivalent),
                        "unexplained": [name for name, _ in r.unexplained],
                        "seconds": round(r.seconds),
                    }
                    for r in results
                ],
                indent=2,
            )
            + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
