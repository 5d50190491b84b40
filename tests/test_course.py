"""The course path: the exercise checks tell right from wrong, and the student notebooks are generated
from the instructors' versions (nbval executes the latter; see notebooks/course/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from unlearnkit.course import EXERCISES, check, compare, reference
from unlearnkit.course.student import (
    SolutionMarkerError,
    build,
    main,
    solution_paths,
    stale,
    student_notebook,
    student_source,
)

COURSE = Path(__file__).resolve().parents[1] / "notebooks" / "course"


# Checks ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_reference_passes_its_own_check(name):
    verdict = check(name, reference(name), show=False)
    assert verdict and verdict.cases >= 8 and "correct on all" in str(verdict)


def trigger_in_place(images, patch_size, value):
    images[..., -patch_size:, -patch_size:] = value
    return images


def trigger_rows_only(images, patch_size, value):
    stamped = images.clone()
    stamped[..., -patch_size:, :] = value
    return stamped


def asr_over_all_classes(predictions, clean_labels, target_class):
    return (predictions == target_class).double().mean().item()


def score_without_halves(val_predictions, val_labels, forget_before, forget_after):
    return (val_predictions == val_labels).double().mean().item() + (forget_after != forget_before).double().mean().item()


def dampening_without_clamp(theta, importance_forget, importance_reference, a, lam):
    selected = importance_forget > a * importance_reference
    return torch.where(selected, lam * importance_reference / importance_forget * theta, theta)


def per_sample_importance(model, inputs, labels, batch_size):
    model.eval()
    squares = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for i in range(len(labels)):
        loss = F.cross_entropy(model(inputs[i:i + 1]), labels[i:i + 1])
        for (name, _), gradient in zip(model.named_parameters(), torch.autograd.grad(loss, list(model.parameters()))):
            squares[name] += gradient ** 2 / len(labels)
    return squares


def gus_dividing_by_zero(gradients, noise, eps):
    g, xi = gradients.flatten(1), noise.flatten(1)
    return (g * xi).sum(1) / (eps * g.norm(dim=1))


@pytest.mark.parametrize("name, wrong, message", [
    ("badnet_trigger", trigger_in_place, "changed its input images in place"),
    ("badnet_trigger", trigger_rows_only, "values differ"),
    ("attack_success_rate", asr_over_all_classes, "expected nan"),
    ("selection_score", score_without_halves, "expected"),
    ("ssd_dampening", dampening_without_clamp, "values differ"),
    ("ssd_importance", per_sample_importance, "values differ"),
    ("gus_scores", gus_dividing_by_zero, "expected 0, got nan"),
])
def test_a_wrong_answer_fails_with_the_case_that_shows_it(name, wrong, message):
    verdict = check(name, wrong, show=False)
    assert not verdict and not verdict.not_done
    assert message in verdict.message and "inputs:" in verdict.message
    assert str(verdict).startswith("❌")


def test_an_unfinished_exercise_says_so_and_the_notebook_falls_back_to_the_library(capsys):
    def unfinished(**_):
        raise NotImplementedError("exercise: replace this line with your code")

    verdict = check("gus_scores", lambda gradients, noise, eps: unfinished(), show=False)
    assert verdict.not_done and not verdict and "not done yet" in str(verdict)
    assert verdict.use(unfinished, reference("gus_scores")) is reference("gus_scores")
    assert "uses the library's gus_scores" in capsys.readouterr().out
    crash = compare("x", lambda value: 1 / value, lambda value: value, [{"value": 0}])
    assert "raised ZeroDivisionError" in crash.message
    assert "color:#cf222e" in crash._repr_html_()


# Student versions --------------------------------------------------------------------------------------------

def test_solutions_become_placeholders_at_their_indentation():
    source = "def f(x):\n    \"\"\"Doc.\"\"\"\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n\nf(1)"
    assert student_source(source) == ('def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n'
                                      '    raise NotImplementedError("exercise: replace this line with your code")\n'
                                      '\nf(1)')
    for broken in ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION"]:
        with pytest.raises(SolutionMarkerError):
            student_source(broken, "nb.ipynb, cell 3")


def test_student_notebooks_drop_instructor_cells_and_outputs():
    solution = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_markdown_cell("the answer")
    answer.metadata["tags"] = ["instructor"]
    code = nbformat.v4.new_code_cell("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION")
    code.outputs, code.execution_count = [nbformat.v4.new_output("stream", text="1")], 3
    solution.cells = [nbformat.v4.new_markdown_cell("# Lesson"), code, answer]
    student = student_notebook(solution, "01_x.ipynb")
    assert [c.source.split("\n")[0] for c in student.cells][1:] == ["# Lesson", "def f():"]
    assert "solutions/01_x.ipynb" in student.cells[0].source
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert "return 1" not in student.cells[2].source and solution.cells[1].source.count("return 1") == 1


def test_the_committed_student_notebooks_are_in_sync_with_the_solutions():
    assert len(solution_paths(COURSE)) >= 5
    assert stale(COURSE) == [], "run: python -m unlearnkit.course.student"
    assert main(["--check", "--course", str(COURSE)]) == 0


def test_every_exercise_of_the_course_is_blanked_and_checked():
    for path in solution_paths(COURSE):
        solution = nbformat.read(path, as_version=4)
        student = nbformat.read(COURSE / path.name, as_version=4)
        code = "\n".join(c.source for c in solution.cells if c.cell_type == "code")
        exercises = code.count("# BEGIN SOLUTION")
        assert exercises >= 1, f"{path.name} has no exercise"
        assert code.count('check("') == exercises, f"{path.name}: every exercise is followed by its check"
        blanked = "\n".join(c.source for c in student.cells if c.cell_type == "code")
        assert blanked.count("raise NotImplementedError") == exercises and "BEGIN SOLUTION" not in blanked
        for notebook in (solution, student):
            assert all(c.outputs == [] for c in notebook.cells if c.cell_type == "code"), f"{path.name}: strip outputs"


def test_stale_student_versions_are_found_and_rebuilt(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    for path in solution_paths(COURSE)[:2]:
        (course / "solutions" / path.name).write_text(path.read_text())
    (course / "99_orphan.ipynb").write_text("{}")
    problems = stale(course)
    assert any("missing" in p for p in problems) and any("99_orphan.ipynb: has no solution" in p for p in problems)
    assert main(["--check", "--course", str(course)]) == 1
    assert len(build(course)) == 2 and len(build(course)) == 0
    (course / "99_orphan.ipynb").unlink()
    assert stale(course) == []


def test_the_lessons_trigger_designer_starts_from_the_lessons_model():
    from unlearnkit.config import to_dict
    from unlearnkit.course import lessons
    from unlearnkit.explore import TriggerLab

    lab = TriggerLab(lessons.DATA, train=lessons.RECIPE, store=lessons.store())
    assert to_dict(lab.experiment(lab.design())) == to_dict(lessons.experiment(lessons.BADNET))
    spelled_out = {**lessons.BADNET, "row": None, "col": None, "value": 1.0, "count": None}
    assert lessons.experiment(spelled_out) == lessons.experiment(lessons.BADNET), "defaults spelled out"
