import random

from vqa.parse import parse_aus, parse_combined
from vqa.prompts import official
from vqa.question_types import group_key, make_consistent, question_type
from vqa.taxonomy import AU_NAMES, FINE_TO_COARSE

Q = official()["questions"]


def clip_rows(image_id: str, *questions: str) -> list[dict]:
    return [
        {"id": f"casme2_{image_id}_{k}", "dataset": "casme2", "image_id": image_id, "question": q}
        for k, q in enumerate(questions, 1)
    ]


def test_coarse_follows_fine():
    rows = clip_rows("s1_c1", Q["coarse"], Q["fine"])
    assert make_consistent(rows, ["positive", "I think the person looks disgusted"]) == [
        "negative",
        "disgust",
    ]


def test_combined_is_rebuilt_from_the_clips_own_answers():
    rows = clip_rows("s1_c1", Q["fine"], Q["au_many"], Q["combined_many"], Q["coarse"])
    raw = [
        "anger",
        "AU4 and lid tightener",
        "The action units present are: dimpler. Therefore...",
        "surprise",
    ]
    fixed = make_consistent(rows, raw)
    assert fixed[2] == (
        "The action units present are: brow lowerer, lid tightener. Therefore, the fine-grained "
        "expression class is anger, and the coarse expression class is negative."
    )
    assert fixed[1] == "brow lowerer, lid tightener" and fixed[3] == "negative"


def test_singular_question_gets_singular_sentence():
    rows = clip_rows("s1_c1", Q["au_one"], Q["combined_one"])
    fixed = make_consistent(rows, ["lip corner puller", "happy"])
    assert fixed[1].startswith("The action unit present is: lip corner puller.")
    assert fixed[1].endswith("class is happiness, and the coarse expression class is positive.")


def test_gaps_are_filled_from_the_combined_answer():
    rows = clip_rows("s1_c1", Q["coarse"], Q["au_one"], Q["combined_one"])
    combined = official()["answers"]["combined_one"].format(
        aus="dimpler", fine="contempt", coarse="negative"
    )
    fixed = make_consistent(rows, ["positive", "nothing I can name", combined])
    assert fixed == ["negative", "dimpler", combined]


def test_labels_snap_to_the_vocabulary():
    rows = clip_rows(
        "s1_c1", Q["fine"], Q["yes_no"].format(au="dimpler"), Q["left_right"].format(au="dimpler")
    )
    assert make_consistent(rows, ["hapiness", "yeah sure", "rigth"]) == [
        "happiness",
        "yes",
        "right",
    ]


def test_clips_are_kept_apart_and_other_questions_untouched():
    rows = clip_rows("s1_c1", Q["fine"], Q["coarse"]) + clip_rows(
        "s2_c9", Q["coarse"], "How old is the person?"
    )
    fixed = make_consistent(rows, ["sadness", "positive", "surprised!", "thirty"])
    assert fixed == ["sadness", "negative", "surprise", "thirty"]


def test_test_schema_rows_group_by_video():
    a = {"video_id": "samm_test_SAMM-1_1", "video": "SAMM-1", "question": Q["coarse"]}
    b = {"video_id": "samm_test_SAMM-1_2", "video": "SAMM-1", "question": Q["fine"]}
    c = {"video_id": "samm_test_SAMM-12_1", "video": "SAMM-12", "question": Q["coarse"]}
    assert group_key(a) == group_key(b) != group_key(c)
    assert make_consistent([a, b, c], ["positive", "fear", "positive"]) == [
        "negative",
        "fear",
        "positive",
    ]


def _noise(rng: random.Random) -> str:
    """Answer-like noise: fragments of labels, AU names and junk, sometimes nothing useful."""
    words = [*FINE_TO_COARSE, "positive", "negative", "AU12", "not", "and", "xq", "the", "zzz"]
    words += rng.sample(list(AU_NAMES.values()), 3)
    return " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))


def test_random_answers_become_consistent():
    rng = random.Random(0)
    questions = [
        Q["coarse"],
        Q["fine"],
        Q["au_many"],
        Q["yes_no"].format(au="dimpler"),
        Q["combined_many"],
    ]
    for clip in range(200):
        asked = [q for q in questions if rng.random() < 0.8] or [Q["combined_one"]]
        rows = clip_rows(f"c{clip}", *asked)
        fixed = dict(
            zip(
                map(lambda r: question_type(r["question"]), rows),
                make_consistent(rows, [_noise(rng) for _ in rows]),
                strict=True,
            )
        )
        if "fine" in fixed and "coarse" in fixed:
            assert fixed["coarse"] == FINE_TO_COARSE[fixed["fine"]]
        if "combined" in fixed:
            aus, fine, coarse = parse_combined(fixed["combined"])
            assert aus and coarse == FINE_TO_COARSE[fine]
            assert aus == parse_aus(fixed.get("au", fixed["combined"]))
            assert fine == fixed.get("fine", fine) and coarse == fixed.get("coarse", coarse)
