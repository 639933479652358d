"""The package's layers go one way (docs/design.md, section 1), checked on the source.

Every ``mtal_jax`` import, lazy ones inside functions included, is read from the AST.
A module may import modules of its own layer or lower ones, never a higher layer; the
import graph has no cycle; core modules import no shell library (orbax, ml_collections,
absl, tensorflow_datasets, grain). A new module must be placed in ``LAYERS``.
"""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mtal_jax"

# (layer, module prefixes); a module belongs to the layer of its longest matching prefix.
LAYERS = [
    (0, ["mtal_jax", "mtal_jax.structs"]),
    (1, ["mtal_jax.ops", "mtal_jax.models", "mtal_jax.coco_map"]),
    (
        2,
        [
            "mtal_jax.decode",
            "mtal_jax.losses",
            "mtal_jax.metrics",
            "mtal_jax.selection",
            "mtal_jax.pool",
            "mtal_jax.strategy_types",
            "mtal_jax.records",
        ],
    ),
    (3, ["mtal_jax.scores"]),
    (
        4,
        [
            "mtal_jax.baseline_strategies",
            "mtal_jax.ours_strategy",
            "mtal_jax.strategies",
            "mtal_jax.strategy_identity",
        ],
    ),
    (5, ["mtal_jax.train", "mtal_jax.train.state", "mtal_jax.train.step"]),
    # ---- shell
    (
        6,
        [
            "mtal_jax.data",
            "mtal_jax.jsonio",
            "mtal_jax.runtime",
            "mtal_jax.sharding",
            "mtal_jax.checkpointing",
            "mtal_jax.metric_writer",
            "mtal_jax.workdir_lock",
            "mtal_jax.output_file",
            "mtal_jax.config_file",
            "mtal_jax.significance",
        ],
    ),
    (
        7,
        [
            "mtal_jax.train.config",
            "mtal_jax.train.evaluate",
            "mtal_jax.train.loop",
            "mtal_jax.train.run_files",
            "mtal_jax.train.step_fns",
            "mtal_jax.train.weights_file",
            "mtal_jax.al",
            "mtal_jax.reporting",
            "mtal_jax.paired",
        ],
    ),
    (8, ["mtal_jax.al.experiment"]),
    (
        9,
        [
            "mtal_jax.al.select_cli",
            "mtal_jax.al.archive_cli",
            "mtal_jax.al.parallel_cli",
            "mtal_jax.al.parts",
            "mtal_jax.analysis",
            "mtal_jax.export",
            "mtal_jax.sim2real",
        ],
    ),
]
CORE_MAX_LAYER = 5
SHELL_LIBRARIES = ("orbax", "ml_collections", "absl", "tensorflow_datasets", "grain", "tqdm")


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: pathlib.Path, modules: dict) -> tuple[set[str], set[str]]:
    """(mtal_jax modules, top-level external packages) imported anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    internal, external = set(), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "mtal_jax":
                while target not in modules:  # `import mtal_jax.x.y` of a symbol path
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    internal.add(target)
            else:
                external.add(target.split(".")[0])
    return internal, external


def _layer(name: str) -> int:
    best, layer = -1, None
    for number, prefixes in LAYERS:
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), number
    return layer


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    layer = _layer(name)
    internal, external = GRAPH[name]
    upward = sorted(t for t in internal if _layer(t) > layer)
    assert not upward, f"{name} (layer {layer}) imports higher layers: {upward}"
    if layer <= CORE_MAX_LAYER:
        shell = sorted(external & set(SHELL_LIBRARIES))
        assert not shell, f"core module {name} imports shell libraries {shell}"


def test_every_module_has_a_layer():
    # mtal_jax itself matches the "mtal_jax" prefix, so check explicit placement of
    # subpackages: a module whose only match is the root package is unplaced.
    unplaced = [
        n
        for n in MODULES
        if n != "mtal_jax"
        and not any(
            n == p or n.startswith(p + ".") for _, ps in LAYERS for p in ps if p != "mtal_jax"
        )
    ]
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"


def test_no_import_cycle():
    graph = {n: GRAPH[n][0] for n in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_package_cites_nothing_outside_the_repository():
    """Docstrings cite the paper and the project's docs (docs/design.md), never files that
    do not ship with the repository."""
    offenders = []
    docs = [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    for path in [*PACKAGE.rglob("*.py"), ROOT / "train.py", ROOT / "select.py", *docs]:
        text = path.read_text()
        needles = (
            "SPEC §",
            "SPEC.md",
            "STYLE §",
            "STYLE.md",
            "baselines_and_peers",
            "/work/shared",
        )
        # (../shared/data is where the real datasets live: named in configs and docs)
        needles += () if path.suffix == ".md" else ("../shared",)
        for needle in needles:
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    # the docs a docstring names exist (e.g. docs/baselines.md)
    for path in PACKAGE.rglob("*.py"):
        for doc in set(re.findall(r"docs/[a-z_]+\.md", path.read_text())):
            if not (ROOT / doc).exists():
                offenders.append(f"{path.relative_to(ROOT)}: {doc} does not exist")
    assert not offenders, offenders


def test_the_experiment_package_imports_its_modules_on_first_use():
    """``mtal_jax.al.experiment`` exports its API lazily (PEP 562): each name is its module's
    object, and importing one module of the package (``archive``, for ``archive_cli``) does
    not import the protocol with its plotting and statistics."""
    import importlib
    import os
    import subprocess
    import sys

    experiment = importlib.import_module("mtal_jax.al.experiment")
    assert sorted(experiment.__all__) == sorted(experiment._MODULE_OF)
    for name, module in experiment._MODULE_OF.items():
        own = importlib.import_module(f"mtal_jax.al.experiment.{module}")
        assert getattr(experiment, name) is getattr(own, name), name
    assert set(experiment.__all__) <= set(dir(experiment))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        experiment.nope  # noqa: B018
    package = os.path.dirname(experiment.__file__)
    modules = {f[:-3] for f in os.listdir(package) if f.endswith(".py") and f != "__init__.py"}
    assert set(experiment._SUBMODULES) == modules
    code = (
        "import mtal_jax.al.experiment as experiment\n"  # a module as an attribute, unimported
        "print(experiment.cycle.__name__, 'cycle' in dir(experiment))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "mtal_jax.al.experiment.cycle True"
    code = (
        "import sys\n"
        "import mtal_jax.al.experiment.archive\n"
        "print(sorted(m for m in ('mtal_jax.al.experiment.protocol', 'mtal_jax.reporting',"
        " 'matplotlib', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
