"""`cdeconv bench`: an end-to-end run on a custom case (no peers needed), its JSON, and
the --plot chart (matplotlib optional: a clear error without it)."""
import json

import pytest

from cdeconv import _bench


def test_bench_runs_a_custom_case_and_writes_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    code = _bench.run(["--custom", "6,6,16,4,3,2", "--peers", "none", "--rounds", "1",
                       "--threads", "1", "--batch", "1", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    (run,) = data["runs"]
    (res,) = run["results"]
    assert res["batch"] == 1 and res["median_s"]["cdeconv"] > 0
    faults = res["page_faults_per_call"]["cdeconv"]
    assert faults is None or faults >= 0
    assert res["cdeconv_rel_err_vs_oracle_image0"] < 1e-5
    text = capsys.readouterr().out
    assert "%sgemm" in text and "no peer timed" in text


def _fake_runs():
    def result(name, batch, ours, peer):
        return {"workload": name, "batch": batch,
                "median_s": {"cdeconv": ours, "ort": peer}}
    return [{"threads": t, "results": [result("a", 1, 1.0, 2.0), result("b", 16, 2.0, 1.0),
                                       {"workload": "c", "batch": 1,
                                        "median_s": {"cdeconv": 1.0}}]}
            for t in (1, 2)]


def test_plot_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    _bench.plot_runs(_fake_runs(), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error_before_any_timing(monkeypatch, capsys):
    real = _bench.importlib.util.find_spec
    monkeypatch.setattr(_bench.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code = _bench.run(["--custom", "6,6,16,4,3,2", "--peers", "none", "--plot", "x.png"])
    assert code == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
