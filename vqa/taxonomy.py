"""Label taxonomy of ME-VQA: emotion classes, the coarse mapping and FACS action-unit names.

The names and spellings are the ones the MEGC2025 organisers use in their QA files.
"""

from __future__ import annotations

COARSE_CLASSES = ("positive", "negative", "surprise")

# Fine classes that can appear in ME-VQA answers, and their coarse class.
FINE_TO_COARSE = {
    "happiness": "positive",
    "surprise": "surprise",
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sadness": "negative",
    "repression": "negative",
}
FINE_CLASSES = tuple(FINE_TO_COARSE)
OTHERS = "others"
# the coarse classes convert writes, others included (the MEGC2024 spot-then-recognise classes)
COARSE_LABELS = (*COARSE_CLASSES, OTHERS)

# Spellings found in the databases' own sheets and folder names -> canonical fine label.
EMOTION_SPELLINGS = {
    "happy": "happiness",
    "happiness": "happiness",
    "happyiness": "happiness",  # CAS(ME)^2 sheet
    "surprise": "surprise",
    "surprised": "surprise",
    "anger": "anger",
    "angry": "anger",
    "contempt": "contempt",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "sad": "sadness",
    "sadness": "sadness",
    "repression": "repression",
    "other": OTHERS,
    "others": OTHERS,
}


def normalize_emotion(text: str) -> str | None:
    """Canonical fine label (or ``others``) of a sheet's emotion cell; None if unknown."""
    return EMOTION_SPELLINGS.get(str(text).strip().lower())


def coarse_of(fine: str) -> str:
    """Coarse class of a fine label (``others`` has none)."""
    return FINE_TO_COARSE[fine]


# FACS action units: number -> name as the ME-VQA organisers spell it.
AU_NAMES = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    8: "lips toward each other",
    9: "nose wrinkler",
    10: "upper lip raiser",
    11: "nasolabial deepener",
    12: "lip corner puller",
    13: "sharp lip puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    18: "lip pucker",
    19: "tongue show",
    20: "lip stretcher",
    21: "neck tightener",
    22: "lip funneler",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
    28: "lip suck",
    29: "jaw thrust",
    30: "jaw sideways",
    31: "jaw clencher",
    32: "lip bite",
    33: "cheek blow",
    34: "cheek puff",
    35: "cheek suck",
    36: "tongue bulge",
    37: "lip wipe",
    38: "nostril dilater",
    39: "nostril compress",
    41: "lid droop",
    42: "slit",
    43: "eye closure",
    44: "squint",
    45: "blink",
    46: "wink",
    51: "turn left",
    52: "turn right",
    53: "head up",
    54: "head down",
    55: "tilt left",
    56: "tilt right",
    57: "head forward",
    58: "head back",
    61: "eyes left",
    62: "eyes right",
    63: "eyes up",
    64: "eyes down",
}
AU_NUMBERS = {name: number for number, name in AU_NAMES.items()}
