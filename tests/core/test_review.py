"""The curators' commands: `faqbot review` (grouping, export round trip) and `faqbot stats`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bots.cli import main
from core import FAQBot, load_knowledge_base
from core.encoder import SentenceEncoder
from core.questionlog.interface import NONE_OF_THESE, LoggedQuestion
from core.questionlog.sqlite import SQLiteQuestionLog
from core.review import build_review, group_similar
from core.review_report import export_candidates
from core.stats import compute_stats

NOW = datetime.now(UTC)
OFFERED = ("address", "opening_hours")


def asked(question: str | None, kind: str, *, intent: str | None = None,
          confidence: float = 0.0, choice: str | None = None, user: str = "u1",
          platform: str = "telegram", days_ago: float = 0.0,
          latency_ms: float = 1.0) -> LoggedQuestion:
    return LoggedQuestion(at=NOW - timedelta(days=days_ago), platform=platform, chat=user,
                          user=user, lang="fr", question=question, kind=kind, intent=intent,
                          confidence=confidence,
                          suggestions=OFFERED if kind == "clarify" else (),
                          latency_ms=latency_ms, choice=choice)


# A week of a small shop's bot, as the question log holds it.
LOG = [
    *[asked("horaires", "answer", intent="opening_hours", confidence=0.99, days_ago=n)
      for n in range(5)],
    asked("salut", "smalltalk", intent="greeting", confidence=1.0, platform="discord"),
    # Users chose after a clarification: labelled examples.
    asked("parking pres du magasin", "clarify", confidence=0.6, choice="address", user="u1"),
    asked("parking pres du magasin", "clarify", confidence=0.6, choice="address", user="u2"),
    asked("on peut se garer", "clarify", confidence=0.5, choice="address", days_ago=1),
    asked("horaires ou adresse", "clarify", confidence=0.5, choice=NONE_OF_THESE),
    asked("ouvert ou ferme", "clarify", confidence=0.5),
    # Refused, in two groups: returns (two spellings), the weather.
    *[asked("retour produit", "fallback", days_ago=2) for _ in range(3)],
    *[asked("retourner un produit", "fallback", platform="discord") for _ in range(2)],
    asked("quel temps fait il demain", "fallback", days_ago=3),
    # Answered, but with little confidence.
    asked("c loin ?", "answer", intent="address", confidence=0.55),
    # Logged with FAQBOT_LOG_TEXT=0.
    asked(None, "fallback"),
]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "questions.sqlite3"
    store = SQLiteQuestionLog(path)
    for row in LOG:
        store.record(row)
    store.close()
    return path


# -- grouping -----------------------------------------------------------------------------------


def test_similar_questions_share_a_group() -> None:
    texts = ["retour produit", "retourner un produit", "quel temps fait il",
             "quel temps fait il demain", "parking"]
    assert group_similar(texts) == [[0, 1], [2, 3], [4]]
    assert group_similar([]) == []


# Questions a review groups, labelled by hand: pairs that ask one thing (worded apart, or in
# two languages), and pairs that ask two different things (often worded alike). The meaning
# bar, MEANING_SIMILARITY, was chosen on them (core/review.py says how).
SAME_QUESTION = [
    ("combien de drones l'armée va acheter", "combien de drones va acheter l'armee"),
    ("combien de drones l'armée va acheter", "combien de drones vont être achetés"),
    ("combien de drones va acheter l'armee", "combien de drones vont être achetés"),
    ("combien coute le contrat", "quel est le prix du contrat"),
    ("combien coute le contrat", "how much does the contract cost"),
    ("qui est le patron de mistral", "qui dirige mistral ai"),
    ("quand l'accord a-t-il été signé", "date de signature de l'accord"),
    ("les données sont hébergées où", "où sont stockées les données"),
    ("est-ce que mistral recrute", "mistral embauche ?"),
    ("is the data stored in france", "are the data hosted in france"),
    ("quelle est la durée du contrat", "le contrat dure combien de temps"),
    ("who founded mistral", "qui a fondé mistral"),
    ("retour produit", "retourner un produit"),
    ("quel temps fait-il demain", "météo de demain"),
    ("how many people work at the agency", "combien de salariés dans l'agence"),
    ("livraison en belgique ?", "vous livrez en belgique"),
    ("je peux payer par cheque", "paiement par chèque accepté ?"),
    ("ia autonome pour tirer", "une ia pourra décider seule de tirer ?"),
]
DIFFERENT_QUESTIONS = [
    ("combien coute le contrat", "combien de drones"),
    ("combien coute le contrat", "combien de drones l'armée va acheter"),
    ("quand l'accord a été signé", "combien coûte l'accord"),
    ("qui dirige l'agence", "qui dirige mistral"),
    ("où sont hébergées les données", "qui a accès aux données"),
    ("le budget de l'agence", "le budget de la défense"),
    ("mistral recrute ?", "mistral est rentable ?"),
    ("how much is mistral worth", "how much is the contract worth"),
    ("quel temps fait-il demain", "quelle heure est-il"),
    ("combien de drones l'armée va acheter", "combien de soldats seront formés"),
    ("l'accord dure combien de temps", "l'accord a été signé quand"),
    ("who is the ceo of mistral", "who is the minister of defence"),
    ("retour produit", "livraison produit"),
    ("parking pres du magasin", "horaires du magasin"),
    ("livraison en belgique ?", "livraison en combien de temps"),
    ("je peux payer par cheque", "je peux payer en plusieurs fois"),
    ("the army uses chatgpt?", "the army uses drones?"),
    ("combien de drones", "how many soldiers"),
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def _merged(pairs: list[tuple[str, str]], encoder: SentenceEncoder | None) -> int:
    embed = encoder.encode if encoder else None
    return sum(len(group_similar(pair, embed=embed)) == 1 for pair in pairs)


def test_questions_with_one_meaning_share_a_group(encoder: SentenceEncoder) -> None:
    texts = ["combien de drones l'armée va acheter", "combien de drones va acheter l'armee",
             "combien de drones vont être achetés", "combien coute le contrat",
             "quand l'accord a-t-il été signé"]
    assert group_similar(texts, embed=encoder.encode) == [[0, 1, 2], [3], [4]]
    assert group_similar(["combien coute le contrat", "combien de drones"],
                         embed=encoder.encode) == [[0], [1]]
    # Without the encoder (`encoder: none`), wording alone: one meaning, two groups.
    assert group_similar(texts) == [[0, 1], [2], [3], [4]]


def test_meaning_bar_on_labelled_pairs(encoder: SentenceEncoder) -> None:
    assert _merged(DIFFERENT_QUESTIONS, encoder) == 0
    assert _merged(SAME_QUESTION, encoder) == 7
    assert _merged(SAME_QUESTION, None) == 2  # the wording alone


def test_review_groups_by_meaning(tiny_bot: FAQBot, encoder: SentenceEncoder) -> None:
    log = [asked("combien de drones l'armée va acheter", "fallback"),
           asked("combien de drones va acheter l'armee", "fallback"),
           asked("combien de drones vont être achetés", "fallback"),
           asked("combien coute le contrat", "fallback")]
    review = build_review(log, tiny_bot, embed=encoder.encode)
    assert [group.count for group in review.groups] == [3, 1]
    assert [len(group.questions) for group in build_review(log, tiny_bot).groups] == [2, 1, 1]


@pytest.mark.parametrize(("encoder", "groups"), [("multilingual-use-v3", 1), ("none", 2)])
def test_review_command_groups_by_meaning_unless_the_encoder_is_off(
        tiny_kb_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], encoder: str,
        groups: int) -> None:
    kb_path = tmp_path / "kb.yaml"
    kb_path.write_text(tiny_kb_path.read_text(encoding="utf-8") + f"encoder: {encoder}\n",
                       encoding="utf-8")
    log_path = tmp_path / "questions.sqlite3"
    store = SQLiteQuestionLog(log_path)
    for question in ("combien de drones l'armée va acheter",
                     "combien de drones va acheter l'armee", "combien de drones vont être achetés"):
        store.record(asked(question, "fallback"))
    store.close()
    assert main(["review", "--db", str(log_path), "--kb", str(kb_path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["groups"]) == groups


def test_review_groups_what_went_wrong(tiny_bot: FAQBot) -> None:
    review = build_review(LOG, tiny_bot)
    assert (review.questions, review.to_review, review.without_text) == (len(LOG), 13, 1)
    returns = review.groups[0]
    assert (returns.count, returns.kinds) == (5, {"fallback": 5})
    assert returns.questions == [("retour produit", 3), ("retourner un produit", 2)]
    assert returns.mostly_refused
    assert all(0.0 <= score <= 1.0 for _, score in returns.nearest)
    grouped = [text for group in review.groups for text, _ in group.questions]
    assert sorted(grouped) == sorted({
        "parking pres du magasin", "on peut se garer", "horaires ou adresse", "ouvert ou ferme",
        "retour produit", "retourner un produit", "quel temps fait il demain", "c loin ?"})
    parking = next(g for g in review.groups if g.questions[0][0] == "parking pres du magasin")
    assert parking.choices == {"address": 2}
    assert [(item.intent, item.question, item.count) for item in review.labelled] == [
        ("address", "parking pres du magasin", 2), ("address", "on peut se garer", 1)]


def test_review_json_and_text(log_path: Path, tiny_kb_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--db", str(log_path), "--kb", str(tiny_kb_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["to_review"] == 13 and report["without_text"] == 1
    assert report["groups"][0]["questions"][0] == {"text": "retour produit", "count": 3}
    assert {"intent": "address", "question": "on peut se garer", "lang": "fr",
            "count": 1} in report["labelled"]
    none_group = next(g for g in report["groups"]
                      if g["questions"][0]["text"] == "horaires ou adresse")
    assert none_group["choices"] == {"none of these": 1}

    assert main(["review", "--db", str(log_path), "--kb", str(tiny_kb_path),
                 "--since", "1.5"]) == 0
    text = capsys.readouterr().out
    assert "retourner un produit" in text and "on peut se garer" in text
    assert "retour produit" not in text.replace("retourner un produit", "")  # 2 days ago
    assert 'address <- "parking pres du magasin" x2' in text


def test_missing_log_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--db", str(tmp_path / "none.sqlite3")]) == 2
    assert main(["stats", "--db", str(tmp_path / "none.sqlite3")]) == 2
    assert "no question log" in capsys.readouterr().err


# -- export round trip ----------------------------------------------------------------------------


def _merge(base: dict[str, Any], candidates: dict[str, Any]) -> dict[str, Any]:
    """What a curator does with the export: copy each example where the export put it."""
    merged = json.loads(json.dumps(base))
    by_id = {intent["id"]: intent for intent in merged["intents"]}
    for intent in candidates["intents"]:
        for lang, examples in intent["examples"].items():
            by_id[intent["id"]].setdefault("examples", {}).setdefault(lang, []).extend(examples)
    for lang, examples in candidates["out_of_scope"].items():
        merged.setdefault("out_of_scope", {}).setdefault(lang, []).extend(examples)
    return merged


def test_export_validates_and_merged_answers_those_questions(
        log_path: Path, tiny_kb_path: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "candidates.yaml"
    assert main(["review", "--db", str(log_path), "--kb", str(tiny_kb_path), "--export",
                 str(export)]) == 0
    assert main(["validate", "--kb", str(export)]) == 0  # a knowledge base of its own
    candidates = yaml.safe_load(export.read_text(encoding="utf-8"))
    by_id = {intent["id"]: intent for intent in candidates["intents"]}
    assert by_id["address"]["examples"]["fr"][:2] == ["parking pres du magasin",
                                                      "on peut se garer"]
    assert {"retour produit", "retourner un produit", "quel temps fait il demain"} <= set(
        candidates["out_of_scope"]["fr"])
    assert "horaires" not in export.read_text(encoding="utf-8").split("intents:")[1].split(
        "question:")[0]  # already known examples are left out
    assert "# chosen 2 times after a clarification" in export.read_text(encoding="utf-8")

    merged_path = tmp_path / "merged.yaml"
    base = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    merged_path.write_text(yaml.safe_dump(_merge(base, candidates), allow_unicode=True),
                           encoding="utf-8")
    load_knowledge_base(merged_path)
    capsys.readouterr()
    assert main(["evaluate", "--kb", str(merged_path), "--folds", "3", "--json"]) == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["in_scope_accuracy"] <= 1.0
    for question, intent in [("parking pres du magasin", "address"),
                             ("on peut se garer", "address"), ("retour produit", None)]:
        assert main(["ask", "--kb", str(merged_path), "--json", question]) == 0
        reply = json.loads(capsys.readouterr().out)
        assert reply["intent"] == intent, reply


def test_nothing_to_export(tiny_bot: FAQBot) -> None:
    review = build_review([asked("horaires", "answer", intent="opening_hours",
                                 confidence=0.99)], tiny_bot)
    assert review.groups == [] and export_candidates(review, tiny_bot.kb) is None


def test_export_survives_any_text(tiny_bot: FAQBot, tmp_path: Path) -> None:
    nasty = ['a "quoted" #not-a-comment: {x}', "line\nbreak\ttab", "\u0085\u0090 ctl",
             "- dash", "émoji 🚀 ?", "   "]
    review = build_review([asked(text, "fallback") for text in nasty], tiny_bot)
    text = export_candidates(review, tiny_bot.kb)
    assert text is not None
    path = tmp_path / "nasty.yaml"
    path.write_text(text, encoding="utf-8")
    kb = load_knowledge_base(path)
    assert set(kb.out_of_scope["fr"]) == set(nasty[:-1])  # the blank one has no words


# -- stats ------------------------------------------------------------------------------------


def test_stats_counts_rates_and_latency() -> None:
    stats = compute_stats(LOG)
    assert stats.questions == len(LOG)
    assert stats.kinds == {"answer": 6, "clarify": 5, "fallback": 7, "smalltalk": 1}
    assert stats.rate("clarify") == pytest.approx(5 / len(LOG))
    assert stats.per_platform == {"telegram": 16, "discord": 3}
    assert sum(stats.per_day.values()) == len(LOG) and list(stats.per_day) == sorted(
        stats.per_day)
    assert stats.top_intents[:2] == [("opening_hours", 5), ("address", 4)]
    assert stats.clarify_choices == {"chosen": 3, "none of these": 1, "no choice": 1}
    assert stats.median_latency_ms == 1.0


def test_stats_command(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", str(log_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == len(LOG)
    assert report["rates"]["fallback"] == round(7 / len(LOG), 4)
    assert main(["stats", "--db", str(log_path), "--since", "0.5"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("10 questions since ")
    assert "per platform: telegram 7, discord 3" in text


# -- what users typed never reaches the curator's terminal raw -----------------------------------

# A terminal obeys ESC and CSI (C1 0x9b) sequences: these retitle the window and clear it.
HOSTILE = ["\x1b]0;pwned\x07\x1b[2J retour produit", "retour \u202eproduit\u200b abime",
           "retour\x9b31m produit casse", "retour\u2028produit\x00 perdu",
           "retour \U000e0001 produit \ue000 echange"]


def _printable_lines(text: str) -> None:
    for line in text.splitlines():
        assert line.isprintable(), ascii(line)


def test_review_stats_and_export_escape_what_users_typed(
        tmp_path: Path, tiny_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hostile.sqlite3"
    store = SQLiteQuestionLog(path)
    for text in HOSTILE:
        store.record(asked(text, "fallback", platform="tele\x1b[2Jgram"))
    store.record(asked("x", "answer", intent="evil\x1b[2J\u202e", confidence=0.99))
    store.close()
    export = tmp_path / "candidates.yaml"
    kb = ["--kb", str(tiny_kb_path)]
    commands = {"review": ["review", *kb, "--export", str(export)],
                "review --json": ["review", *kb, "--json"], "stats": ["stats"],
                "stats --json": ["stats", "--json"]}
    outputs = {}
    for name, command in commands.items():
        assert main([*command, "--db", str(path)]) == 0
        outputs[name] = capsys.readouterr().out
        _printable_lines(outputs[name])
    assert "\\x1b]0;pwned\\x07\\x1b[2J retour produit" in outputs["review"]
    assert "tele\\x1b[2Jgram 5" in outputs["stats"] and "evil\\x1b[2J\\u202e" in outputs["stats"]
    # JSON's own escapes: the data reads back unchanged.
    groups = json.loads(outputs["review --json"])["groups"]
    assert {item["text"] for group in groups for item in group["questions"]} == set(HOSTILE)
    assert json.loads(outputs["stats --json"])["per_platform"] == {"tele\x1b[2Jgram": 5,
                                                                    "telegram": 1}
    text = export.read_text(encoding="utf-8")
    _printable_lines(text)
    assert set(load_knowledge_base(export).out_of_scope["fr"]) == set(HOSTILE)  # round trip
