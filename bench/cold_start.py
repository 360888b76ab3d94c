"""Figure 1: each function's cold start in a fresh interpreter, against the floor `import boto3` plus the
boto3 clients that function creates; and, from the same processes, the memory floor of figure 5.

The headline is the cold start as deployed: the layer is built with its bytecode (layers/shared/Makefile),
since Lambda's read-only /opt cannot cache it, and the runtime ships the standard library's. A warm-up import
of every handler writes a bytecode cache (PYTHONPYCACHEPREFIX) that the measured interpreters and their floors
read without writing to it: both sides compiled alike. The case with sources only (the standard library's
part of that cache copied to a second one) is kept in the details: what a layer without bytecode would cost.

The handlers create their clients on the first request, not at import. The measured side is therefore
the import of the handler module plus the creation of the same clients through igdm.runtime.aws.client, i.e.
what a cold start pays before it can answer; the import alone is reported next to it. Handler and floor
alternate, their order swapped every round, so the machine's load falls on both alike.
"""

import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    CLIENTS,
    LAYER,
    PACKAGE_GROUPS,
    SHORT_NAMES,
    Figure,
    clean_environment,
    code_path,
    functions,
    handler_module,
    median,
    package_group,
    stand_in_stack,
)

# Meta waits on the webhook's cold starts: it is held closest to its floor.
TARGET_FUNCTION = "WebhookFunction"
TARGET_RATIOS = {TARGET_FUNCTION: 1.2}
DEFAULT_TARGET_RATIO = 1.4
ROUNDS = {TARGET_FUNCTION: 7}  # the figure with the tightest target gets more rounds
DEFAULT_ROUNDS = 3
SOURCE_ROUNDS = 3  # each function again with sources only, for the details
RUN_TIME_LIMIT = 60.0

# The peak resident set is read from /proc/self/status (VmHWM): see bench.lambda_child.peak_rss_mb.
_TIMED = """
import json, time
started = time.perf_counter()
{body}
ended = time.perf_counter()
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"ms": (ended - started) * 1000, "import_ms": (imported - started) * 1000, "rss_mb": peak / 1024}}))
"""
_HANDLER = """import {module}
imported = time.perf_counter()
from igdm.runtime import aws
for service in {clients!r}:
    aws.client(service)
"""
# The floor keeps its clients, as the handler does (igdm.runtime.aws caches them) and as any function must: the
# same clients created and dropped one by one measured about 13 ms less (21 runs each), a floor no function that
# uses its clients can reach.
_FLOOR = """import boto3
imported = time.perf_counter()
clients = [boto3.client(service) for service in {clients!r}]
"""


@dataclass(frozen=True)
class ColdStarts:
    figures: list[Figure]
    floor_rss_mb: dict[str, float]  # per function: the floor process's peak memory (figure 5's floor)


def _environment(logical_id: str, cache: Path, *, write: bool) -> dict[str, str]:
    environment = {
        **clean_environment(),
        **stand_in_stack().function_environment(logical_id),
        "PYTHONPATH": f"{code_path(logical_id)}:{LAYER}",
        "PYTHONPYCACHEPREFIX": str(cache),
    }
    if write:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


def _run(code: str, environment: dict[str, str], *options: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as cwd:  # not the repository: nothing else on sys.path
        out = subprocess.run(  # noqa: S603 - our own interpreter, our own code
            [sys.executable, *options, "-c", code],
            env=environment,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=RUN_TIME_LIMIT,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError(f"cold start run failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if options:
        result.update(_import_times(out.stderr))
    return result


def _import_times(report: str) -> dict[str, float]:
    """`-X importtime`'s self times, summed by package group (bench.common.package_group), in ms."""
    groups: dict[str, float] = {}
    for line in report.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header, or anything else on stderr
        group = package_group(parts[2].strip().split(".")[0])
        groups[group] = groups.get(group, 0.0) + int(parts[0]) / 1000
    return groups


def _caches(everything: Path, stdlib_only: Path) -> None:
    """Bytecode caches of what the handlers import: all of it, and the standard library's alone."""
    for logical_id in functions():
        body = _HANDLER.format(module=handler_module(logical_id), clients=CLIENTS[logical_id])
        _run(_TIMED.format(body=body), _environment(logical_id, everything, write=True))
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    relative = stdlib.relative_to(stdlib.anchor)
    if (everything / relative).exists():
        shutil.copytree(everything / relative, stdlib_only / relative)


Runs = list[dict[str, float]]


def _alternate(handler: str, floor: str, environment: dict[str, str], rounds: int) -> tuple[Runs, Runs]:
    """The handler's and the floor's runs, taking turns, the order swapped every round."""
    measured: Runs = []
    floors: Runs = []
    for round_ in range(rounds):
        turns = [(handler, measured), (floor, floors)]
        for code, results in turns if round_ % 2 == 0 else reversed(turns):
            results.append(_run(code, environment))
    return measured, floors


def measure() -> ColdStarts:
    figures, floor_rss = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as scratch:
        everything, stdlib_only = Path(scratch) / "everything", Path(scratch) / "stdlib"
        _caches(everything, stdlib_only)
        for logical_id in functions():
            clients = CLIENTS[logical_id]
            handler = _TIMED.format(body=_HANDLER.format(module=handler_module(logical_id), clients=clients))
            floor = _TIMED.format(body=_FLOOR.format(clients=clients))
            deployed = _environment(logical_id, everything, write=False)
            measured, floors = _alternate(handler, floor, deployed, ROUNDS.get(logical_id, DEFAULT_ROUNDS))
            floor_rss[logical_id] = median([f["rss_mb"] for f in floors])
            # One more import, under -X importtime: where the time goes (the option itself slows it a little).
            attribution = _run(handler, deployed, "-X", "importtime")
            sources = _alternate(handler, floor, _environment(logical_id, stdlib_only, write=False), SOURCE_ROUNDS)
            figures.append(_figure(logical_id, measured, floors, attribution, sources))
    return ColdStarts(figures, floor_rss)


def _figure(
    logical_id: str, measured: Runs, floors: Runs, attribution: dict[str, float], sources: tuple[Runs, Runs]
) -> Figure:
    name = SHORT_NAMES[logical_id]
    value, floor = median([m["ms"] for m in measured]), median([f["ms"] for f in floors])
    import_only = median([m["import_ms"] for m in measured])
    boto3_only = median([f["import_ms"] for f in floors])
    ratio = TARGET_RATIOS.get(logical_id, DEFAULT_TARGET_RATIO)
    first = logical_id == TARGET_FUNCTION  # the method is written once, on the first row
    return Figure(
        f"cold_{name}",
        f"Cold start: {handler_module(logical_id)} + {len(CLIENTS[logical_id])} clients",
        value,
        floor,
        "ms",
        f"<= {ratio}x floor",
        value / floor <= ratio,
        method=(
            f"For each function, fresh interpreters ({len(measured)} for the webhook, "
            f"{DEFAULT_ROUNDS} for the others) import the handler module and create the function's clients "
            "through `igdm.runtime.aws.client`, alternating with as many that `import boto3` and create the same "
            "clients with `boto3.client`, keeping them as a function does: the floor. The handlers create their "
            "clients on the first request, not at import; that is still part of the cold start the caller waits "
            "for, so the measured side includes them, like the floor (the import alone is in the details). Timed "
            "inside each process with "
            "`time.perf_counter()`, so the interpreter's own start-up, the same for both, is left out; medians. "
            "As deployed: the layer ships its bytecode (layers/shared/Makefile) and the runtime the standard "
            "library's, so both sides read one bytecode cache (`PYTHONPYCACHEPREFIX`) without writing to it; the "
            "function's own few modules are counted compiled too, which Lambda's read-only /var/task does not "
            "give them (a few milliseconds). With sources only, as a layer built without its bytecode would run, "
            "in the details. One more import per function under `-X importtime` says where the time goes. "
            f"Targets: the webhook, which Meta waits on, <= {TARGET_RATIOS[TARGET_FUNCTION]}x its floor; every "
            f"other function <= {DEFAULT_TARGET_RATIO}x."
            if first
            else ""
        ),
        target_value=ratio * floor,
        details=[
            f"import of the module alone: {import_only:.0f} ms ({import_only / floor:.2f}x the floor); "
            f"import boto3 alone: {boto3_only:.0f} ms; the clients: {floor - boto3_only:.0f} ms",
            "the import by package (-X importtime, self times): "
            + ", ".join(
                f"{group} {ms:.0f} ms"
                for group, ms in sorted(attribution.items(), key=lambda kv: -kv[1])
                if group in _GROUPS
            ),
            _sources_detail(*sources),
        ],
    )


def _sources_detail(measured: Runs, floors: Runs) -> str:
    value, floor = median([m["ms"] for m in measured]), median([f["ms"] for f in floors])
    return (
        f"with sources only (a layer without bytecode, only the standard library compiled): {value:.0f} ms "
        f"against a floor of {floor:.0f} ms, {value / floor:.2f}x ({len(measured)} runs each)"
    )


_GROUPS = {*PACKAGE_GROUPS.values(), "gateway", "stdlib and other"}
