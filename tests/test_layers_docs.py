"""docs/layers.md: its Python examples run and their assertions hold; the numbers it
states match the code."""
import pathlib
import re
import warnings

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "layers.md"


def test_layers_doc_python_blocks_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for code in blocks:
            exec(compile(code.replace("/tmp/", str(tmp_path) + "/"), str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "[[4 2]\n [2 1]]" in out and "[[4 4]\n [4 4]]" in out
    assert any("unevenly" in str(w.message) for w in caught)


def test_layers_doc_states_the_grid_size():
    import json
    cases = json.loads((DOC.parents[1] / "tests/data/keras/convT_grid.json").read_text())
    ok = sum(c["ok"] for c in cases["cases"] if not c.get("dilation"))
    assert re.search(rf"on {ok}\s+\(kernel, stride, padding, output_padding\) cases",
                     DOC.read_text())
