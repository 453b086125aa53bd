"""`autograd.exercise`: a graph to backpropagate through by hand, graded with a teacher's verdicts and hints that
escalate (the stage, then the local derivatives, then the number); the same seed gives the same exercise; a
worksheet to hand out carries no answers; the command line prints one."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from autograd import Exercise, backpropagate, exercise
from autograd.view.annotated import AnnotatedPass
from lstm.cli import main

KINDS = ("expression", "mlp", "rnn-step", "lstm-step", "cnn-stage")


def right_answers(task: Exercise) -> dict:
    """The engine's gradients of the blanks: what a right derivation by hand gives."""
    graph = AnnotatedPass(task.root)
    adjoints = backpropagate(task.root).adjoints
    by_name = {graph.names[node]: node for node in graph.listing}
    return {name: np.asarray(adjoints[by_name[name]], dtype=float) for name in task.blanks}


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_seed_gives_the_same_exercise_and_right_answers_pass(kind):
    first, again, other = exercise(kind, seed=3), exercise(kind, seed=3), exercise(kind, seed=4)
    assert str(first) == str(again) and str(first) != str(other)
    assert first.blanks and all(f"{name}" in str(first) for name in first.blanks)
    grade = first.grade(right_answers(first))
    assert grade.passed and grade.level == 0 and grade.hint is None
    assert "all agree." in str(grade)
    half = dict(list(right_answers(first).items())[:2])
    partial = first.grade(half)
    assert not partial.passed and partial.check.passed and "2 of" in str(partial) and "missing:" in str(partial)
    assert str(partial).splitlines()[-1] == f"Next: fill in the rest: {', '.join(first.blanks[2:])}."


@pytest.mark.parametrize("seed", range(12))
def test_every_name_in_the_task_is_defined_in_it(seed):
    for kind in ("expression", "mlp"):
        task = exercise(kind, seed=seed)
        lines = task.forward_lines()
        defined = {line.split(" = ")[0].strip() for line in lines if " = " in line}
        for line in lines:
            if " = " in line:
                used = line.split(" = ")[1]
                for token in used.replace("(", " ").replace(")", " ").replace("^", " ").split():
                    assert token in defined or token in {"*", "+", "-", "sigmoid", "tanh"} or _number(token), (
                        kind, seed, line)


def _number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def expression_with(form_blank):
    """An expression exercise (searching seeds) whose blanks include ``form_blank``, and its right answers."""
    for seed in range(50):
        task = exercise("expression", seed=seed)
        if form_blank in task.blanks:
            return task, right_answers(task)
    raise AssertionError(form_blank)


def test_the_verdicts_on_expression_exercises():
    task, right = expression_with("f")  # a forks into d = a * b and L = f * a, or into d = a + b
    assert task.grade({**right, "e": -right["e"]}).check.first_mismatch.diagnosis.kind == "sign flipped"
    task, right = expression_with("s")  # L = 0.5 * s, s = e * e
    first = task.grade({**right, "e": 0.5 * right["e"]}).check.first_mismatch
    assert first.name == "e" and first.diagnosis.kind == "scaled"
    seeds = {}
    for seed in range(60):
        candidate = exercise("expression", seed=seed)
        text = "\n".join(candidate.forward_lines())
        seeds.setdefault("fork" if "L = f * a" in text else "square" if "e = d * d" in text else "error", seed)
    task = exercise("expression", seed=seeds["fork"])
    right = right_answers(task)
    nodes = {node.label: node for node in AnnotatedPass(task.root).listing if node.label}
    only_product = right["d"] * nodes["b"].data  # a's branch through d = a * b, without the one through L
    first = task.grade({**right, "a": only_product}).check.first_mismatch
    assert first.diagnosis.kind == "branch missing" and "the branch through L is missing" in first.diagnosis.text
    twice = right["a"] + right["d"] * nodes["b"].data
    assert task.grade({**right, "a": twice}).check.first_mismatch.diagnosis.kind == "branch counted twice"
    tanh_as_one = right["f"] * 1.0  # dL/de with tanh' taken as 1
    first = task.grade({**right, "e": tanh_as_one}).check.first_mismatch
    assert first.name == "e" and first.diagnosis.kind == "taken as 1"
    tanh_as_itself = right["f"] * nodes["f"].data
    assert task.grade({**right, "e": tanh_as_itself}).check.first_mismatch.diagnosis.kind == "value for its derivative"
    task = exercise("expression", seed=seeds["square"])
    right = right_answers(task)
    first = task.grade({**right, "d": right["d"] / 2}).check.first_mismatch
    assert first.name == "d" and first.diagnosis.kind == "scaled" and "uses d twice" in first.diagnosis.text


def test_a_cnn_exercise_reads_p_minus_y_and_finds_a_kernel_gradient_taken_from_one_position():
    task = exercise("cnn-stage", seed=1)
    assert "target class y =" in str(task)
    right = right_answers(task)
    z, y = task.values["z"], int(str(task).split("target class y = ")[1][0])
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(right["z"], p - np.eye(3)[y], rtol=1e-12)  # dL/dz = p - onehot(y), batch of 1
    wrong = dict(right, K=right["K"] / 9)  # one position's share of the kernel's fork over 9, not their sum
    grade = task.grade(wrong)
    assert not grade.passed and grade.check.first_mismatch.name == "K"


def test_hints_escalate_while_the_same_gradient_stays_wrong_and_start_again_when_it_moves():
    task = exercise("mlp", seed=1)
    right = right_answers(task)
    wrong = {**right, "net_o1": right["net_o1"] * 3.0}
    grades = [task.grade(wrong) for _ in range(4)]
    assert [grade.level for grade in grades] == [1, 2, 3, 3]
    assert grades[0].hint.startswith("look again at dE_total/dnet_o1 (stage output layer)")
    assert "∂out_o1/∂net_o1 = sigmoid(net_o1)*(1 - sigmoid(net_o1))" in grades[1].hint
    number = grades[2].hint
    assert number.startswith("the number: dE_total/dnet_o1 = ") and number in str(grades[2])
    assert "engine:" not in str(grades[0]) and "engine:" not in str(grades[1]) and "engine:" in str(grades[2])
    moved = task.grade({**right, "w1": right["w1"] + 1.0})
    assert moved.level == 1 and "dE_total/dw1" in moved.hint
    with pytest.raises(ValueError, match="'w9' is not among this exercise's blanks"):
        task.grade({"w9": 1.0})


def test_the_solution_is_the_worked_derivation():
    task = exercise("expression", seed=5)
    solution = task.solution()
    assert all(solution.step(name) for name in task.blanks)
    text = str(solution)
    assert text.startswith("Forward:") and "Backward, in reverse order" in text


def test_unknown_kinds_and_bad_seeds_are_refused():
    kinds = "cnn-stage, expression, lstm-step, mlp, rnn-step"
    with pytest.raises(ValueError, match=f"unknown kind 'cnn'; the kinds are {kinds}"):
        exercise("cnn")
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            exercise("mlp", seed=seed)


def test_a_worksheet_carries_the_task_and_blanks_but_no_answers(tmp_path):
    task = exercise("rnn-step", seed=2)
    path = task.worksheet(tmp_path / "sheet.ipynb")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    sources = "\n".join(cell.source for cell in notebook.cells)
    assert "exercise('rnn-step', seed=2)" in sources and "ex.grade(answers)" in sources
    answers = next(cell.source for cell in notebook.cells if cell.source.startswith("answers"))
    namespace: dict = {}
    exec(answers, namespace)
    assert namespace["answers"] == dict.fromkeys(task.blanks)  # every blank, none filled
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    for name, value in right_answers(task).items():
        for number in np.ravel(value):
            if abs(number) > 1e-3:
                assert f"{number:.4f}" not in sources, name
    with pytest.raises(ValueError, match="must end in .ipynb"):
        task.worksheet(tmp_path / "sheet.txt")


def test_a_worksheet_runs_and_grades_its_blanks(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    path = exercise("expression", seed=1).worksheet(tmp_path / "sheet.ipynb")
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    shown = json.dumps(notebook.cells[-1].outputs)
    assert "Your 0 gradients of L" in shown and "0 of " in shown and "missing:" in shown


def test_the_command_line_prints_an_exercise_and_writes_its_worksheet(tmp_path, capsys):
    assert main(["exercise", "--kind", "lstm-step", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out == str(exercise("lstm-step", seed=3)) + "\n"
    sheet = tmp_path / "sheets" / "a.ipynb"
    assert main(["exercise", "--kind", "expression", "--seed", "1", "--solution", "--worksheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "Backward, in reverse order" in out and f"wrote {sheet}" in out and sheet.exists()
    assert main(["exercise", "--worksheet", str(tmp_path / "a.txt")]) == 2
    assert "must end in .ipynb" in capsys.readouterr().err
    assert main(["exercise", "--kind", "cnn"]) == 2
