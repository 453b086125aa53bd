"""The README's examples run as written, and the outputs it shows are what they print."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_python_examples_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the examples write loss.svg
    namespace: dict = {}
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) == 7
    for number, block in enumerate(blocks):
        exec(compile(block, f"README block {number}", "exec"), namespace)
    assert "all passed" in capsys.readouterr().out
    assert (tmp_path / "loss.svg").read_bytes().startswith(b"<?xml")


def test_the_explanation_shown_is_the_one_explain_writes():
    from autograd import Value, explain

    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = (c + a).tanh()
    L.label = "L"
    shown = re.search(r"```text\n(Forward:.*?)```", README, re.S)[1]
    assert shown.rstrip("\n") == str(explain(L))
    L.backward()
    assert re.search(r"a\.grad, b\.grad +# \((\S+), (\S+)\)", README).groups() == (f"{a.grad:.4g}", f"{b.grad:.4g}")


def test_the_two_commands_and_the_pictures_are_there():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert commands == ["bash .ci/setup python -m lstm demo", "bash .ci/run"]
    for picture in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (Path(__file__).parent.parent / picture).is_file(), picture
