"""The asv benchmark modules import, their parameters are well formed, and every
benchmark's setup and body run (once, on its first parameter set)."""
import importlib
import inspect
import itertools
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "asv_benchmarks"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(ROOT))
    try:
        mods = [importlib.import_module(f"benchmarks.{p.stem}")
                for p in sorted((ROOT / "benchmarks").glob("bench_*.py"))]
    finally:
        sys.path.remove(str(ROOT))
    assert len(mods) >= 2
    return mods


def test_config_is_valid_json_with_comments():
    import json
    import re
    text = (ROOT / "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))
    assert conf["repo"] == ".." and conf["benchmark_dir"] == "benchmarks"


def test_every_benchmark_runs_once(bench_modules):
    ran = 0
    for mod in bench_modules:
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != mod.__name__:
                continue
            params = getattr(cls, "params", [])
            if params and not isinstance(params[0], list):
                params = [params]
            first = [p[0] for p in params]
            names = getattr(cls, "param_names", [])
            assert len(names) == len(params)
            for combo in itertools.islice(itertools.product(*params), 1):
                obj = cls()
                try:
                    if hasattr(obj, "setup"):
                        obj.setup(*combo)
                except NotImplementedError:
                    continue
                for name in dir(obj):
                    if name.startswith(("time_", "peakmem_", "track_")):
                        try:
                            getattr(obj, name)(*combo)
                        except NotImplementedError:
                            continue
                        ran += 1
                if hasattr(obj, "teardown"):
                    obj.teardown(*combo)
            assert first is not None
    assert ran >= 8
