import pytest

from vqa.errors import UserError
from vqa.prompts import build_messages, official, prompt_text
from vqa.question_types import question_type
from vqa.records import resolve_visual

OFFICIAL_EXAMPLES = {
    "What is the coarse expression class?": "coarse",
    "What is the fine-grained expression class?": "fine",
    "What is the action unit?": "au",
    "What are the action units?": "au",
    "Is the action unit lip corner puller located on the left or right face?": "left_right",
    "Is the action unit brow lowerer shown on the face?": "yes_no",
    official()["questions"]["combined_one"]: "combined",
    official()["questions"]["combined_many"]: "combined",
    "How old is the person?": "other",
}


@pytest.mark.parametrize("question,qtype", OFFICIAL_EXAMPLES.items())
def test_question_types(question, qtype):
    assert question_type(question) == qtype


def test_plain_prompt_is_the_question():
    row = {"question": "What is the coarse expression class?"}
    assert prompt_text(row, "plain") == row["question"]


def test_guided_prompt_names_labels_and_legend():
    row = {"question": "What is the coarse expression class?", "flow_legend": "red means up"}
    text = prompt_text(row, "guided")
    assert "positive, negative or surprise" in text and "red means up" in text


def test_messages_put_visuals_before_text(tmp_path):
    row = {
        "question": "What is the action unit?",
        "answer": "dimpler",
        "images": ["a.jpg"],
        "frames": ["f1.jpg", "f2.jpg"],
    }
    messages = build_messages(row, tmp_path, with_answer=True)
    kinds = [item["type"] for item in messages[0]["content"]]
    assert kinds == ["image", "video", "text"]
    assert messages[1]["content"][0]["text"] == "dimpler"


@pytest.mark.parametrize("bad", ["../x.jpg", "/etc/passwd"])
def test_visual_paths_must_stay_in_their_folder(tmp_path, bad):
    with pytest.raises(UserError, match="outside"):
        resolve_visual(tmp_path, bad)
