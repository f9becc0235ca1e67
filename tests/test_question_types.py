import pytest

from vqa.errors import UserError
from vqa.train import of_question_types

ROWS = [
    {"question": "What is the coarse expression class?"},
    {"question": "What is the fine-grained expression class?"},
    {"question": "Is the action unit brow lowerer shown on the face?"},
]


def test_keep_the_named_question_types():
    assert of_question_types(ROWS, "coarse, fine") == ROWS[:2]
    assert of_question_types(ROWS, None) == ROWS


def test_unknown_question_type_is_a_user_error():
    with pytest.raises(UserError, match="unknown question type 'emotion'"):
        of_question_types(ROWS, "coarse,emotion")


def test_readme_lists_every_registered_question_type():
    from pathlib import Path

    from vqa.question_types import REGISTRY

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    for name in REGISTRY:
        assert f"`{name}`" in readme, name
