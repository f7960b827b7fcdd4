"""The package's layout: sub-packages in one order of dependence, no import cycle, every import of
its own modules inside a function explained, the public names kept, every declared variant real."""

import ast
import importlib
import subprocess

import pytest

import tfp_vae
from conftest import REPO
from tfp_vae import choices
from tfp_vae.errors import ConfigError
from tfp_vae.registry import Registry

PACKAGE = REPO / "tfp_vae"
# Bottom to top: a module may import from its own layer and the ones before it, never after.
LAYERS = [
    "errors",
    "registry",
    "choices",
    "data",
    "config",
    "quiet",
    "model",
    "runs",
    "evaluation",
    "training",
    "studies",
    "plots",
    "cli",
]
# `tfp_vae.__all__` as it was before the layout (commit 3a6546c): every name stays importable.
PUBLIC_BEFORE = """CLASS_NAMES DATASETS ENCODERS LIKELIHOODS SCHEDULES STRATEGIES ConfigError DataError
KLDivergence KLSchedule KLScheduleCallback Likelihood NonBinaryBernoulliWarning NonFiniteLossError
RunDirError TfpVaeError VAE VAEConfig binarize_images build_decoder build_encoder build_vae check_images
check_labels evaluate load load_config load_data_for load_dataset load_fashion_mnist load_history
load_mnist load_uint8 make_optimizer make_strategy op_determinism posterior_means save scale_images
standard_normal_prior train SweepPoint active_units_vs_beta compare_reconstructions compare_samples
grid_points load_results rate_distortion shard_points sweep traversals_by_beta validation_curves dci
disentanglement_metrics disentanglement_vs_beta factor_traversals factor_vae_score mig model_metrics
principal_traversals sap SOURCES DSprites load_dsprites HIDDEN_ACTIVATIONS PRIORS GaussianMixtureTriL
Gated build_prior RunDirBusyError TensorBoardLogs run_lock runs_table LR_SCHEDULES LRSchedule
evaluate_run""".split()


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else -1  # tfp_vae/__init__ is outside the order


def _own_imports(tree):
    """(node, imported module, at module level?) for each import of a tfp_vae module, leaving out
    the ones under `if TYPE_CHECKING:` (annotations only)."""
    typing_only = {
        id(node)
        for top in tree.body
        if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test)
        for node in ast.walk(top)
    }
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfp_vae"):
            for alias in node.names:  # `from tfp_vae.data import idx` imports the module tfp_vae.data.idx
                full = f"{node.module}.{alias.name}"
                is_module = (REPO / full.replace(".", "/")).with_suffix(".py").is_file()
                yield node, full if is_module else node.module, id(node) in top_level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tfp_vae"):
                    yield node, alias.name, id(node) in top_level


def test_every_import_points_down_the_layers():
    upward = []
    for module, path in _modules():
        for node, imported, _ in _own_imports(ast.parse(path.read_text())):
            if module != "tfp_vae" and imported != "tfp_vae" and _layer(imported) > _layer(module):
                upward.append(f"{path.relative_to(REPO)}:{node.lineno} imports {imported}")
    assert upward == []


def test_no_import_cycle_between_modules():
    graph = {}
    for module, path in _modules():
        tree = ast.parse(path.read_text())
        graph[module] = {imported for _, imported, top in _own_imports(tree) if top and imported != module}
    seen, path = set(), []

    def visit(module):
        assert module not in path, f"import cycle: {' -> '.join([*path[path.index(module) :], module])}"
        if module in seen or module not in graph:
            return
        path.append(module)
        for imported in graph[module]:
            visit(imported)
        path.pop()
        seen.add(module)

    for module in graph:
        visit(module)


def test_every_late_import_of_the_package_says_why():
    silent = []
    for _, path in _modules():
        lines = path.read_text().splitlines()
        for node, _, top in _own_imports(ast.parse(path.read_text())):
            if top:
                continue
            # the reason sits on the import's line, or in a comment just above it
            near = lines[node.lineno - 1] + "".join(lines[max(0, node.lineno - 4) : node.lineno - 1])
            if "#" not in near:
                silent.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert silent == []


def test_the_public_names_stay_importable():
    assert set(PUBLIC_BEFORE) <= set(tfp_vae.__all__)
    for name in tfp_vae.__all__:
        assert getattr(tfp_vae, name) is not None, name
    assert "train" in dir(tfp_vae) and "model" in dir(tfp_vae)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        tfp_vae.nonsense  # noqa: B018


def test_every_subpackage_says_what_it_holds_and_may_use():
    for module, path in _modules():
        if path.name == "__init__.py" and module != "tfp_vae":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "May use" in doc or "Uses only" in doc, module


REGISTRIES = [value for value in vars(choices).values() if isinstance(value, Registry)]


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.field)
def test_every_declared_variant_has_an_entry(registry):
    for name in registry:
        assert registry[name] is not None
        assert registry.help(name)
    importlib.import_module(registry.home)
    assert sorted(registry._entries) == list(registry)  # nothing registered that is not declared


def test_declared_facts_match_the_entries():
    for name, prior in choices.PRIORS.items():
        assert choices.PRIORS.fact(name, "starts_from_data") == (prior.start_from_data is not None)
    from tfp_vae.model.decoders import DECODERS

    assert list(DECODERS) == list(choices.ENCODERS)


def test_an_unknown_name_is_one_error_naming_the_field_and_the_near_names():
    with pytest.raises(ConfigError, match=r"^prior='vampprior': unknown prior \(did you mean 'vamp'\?\)"):
        choices.PRIORS["vampprior"]
    with pytest.raises(ConfigError, match=r"choose one of \['constant', 'plateau'\]\.$"):
        choices.LR_SCHEDULES.check(["plateau"])  # not a name at all: no near names, no TypeError
    assert [0, 0] not in choices.LIKELIHOODS
    with pytest.raises(ValueError, match="not declared"):
        choices.LIKELIHOODS.register("poisson", object())


def test_every_source_file_is_in_git():
    """A file git ignores (e.g. by a `runs/` pattern meant for run directories) is missing from
    every clone, and its package with it."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "tfp_vae", "tests"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [path for path in ignored if path.endswith(".py")] == []
    packages = {path.parent for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}
    assert all((package / "__init__.py").is_file() for package in packages)
