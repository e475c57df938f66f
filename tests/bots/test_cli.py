"""The faqbot command: every subcommand, the JSON contract and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bots.cli import main
from tests.auxil.telegram import TOKEN

JSON_KEYS = {"question", "kind", "intent", "confidence", "lang", "answer", "suggestions"}


def run(*args: str, stdin: str | bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real console entry point in a new process, as a user or another tool runs it."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, "-m", "bots.cli", *args], input=data,
                          capture_output=True, timeout=120, env=env, check=False)


def test_ask_one_question_json(tiny_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", "--kb", str(tiny_kb_path), "--json", "Do you deliver?"])
    line = capsys.readouterr().out.strip()
    reply = json.loads(line)
    assert code == 0
    assert set(reply) == JSON_KEYS
    assert (reply["kind"], reply["intent"], reply["lang"]) == ("answer", "delivery", "en")
    assert 0 <= reply["confidence"] <= 1
    assert reply["answer"] == "Yes, within 48 hours."


def test_ask_stdin_one_reply_per_line_in_order(tiny_kb_path: Path) -> None:
    questions = "Do you deliver?\n\nquelle est l'adresse du magasin\ntell me a joke\nsalut\n"
    result = run("ask", "--kb", str(tiny_kb_path), "--json", stdin=questions)
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["question"] for r in replies] == questions.splitlines()
    assert [r["kind"] for r in replies] == ["answer", "fallback", "answer", "fallback",
                                            "smalltalk"]
    assert all(set(r) == JSON_KEYS for r in replies)
    assert replies[1]["intent"] is None and replies[1]["suggestions"]
    assert all(set(s) == {"intent", "question"} for s in replies[1]["suggestions"])


def test_ask_plain_text_and_forced_language(tiny_kb_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--kb", str(tiny_kb_path), "--lang", "en", "livraison ?"]) == 0
    assert capsys.readouterr().out == "Yes, within 48 hours.\n"


def test_ask_binary_stdin_survives(tiny_kb_path: Path) -> None:
    result = run("ask", "--kb", str(tiny_kb_path), "--json",
                 stdin=b"\xff\xfe\x00garbage\nDo you deliver?\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["intent"] == "delivery"


def test_invalid_knowledge_base_exits_2_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nintents: [oops\n", encoding="utf-8")
    for command in (["ask", "hello"], ["validate"], ["evaluate"], ["chat"]):
        result = run(*command, "--kb", str(broken))
        assert result.returncode == 2, command
        assert result.stderr.decode().count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr.decode()
        assert str(broken) in result.stderr.decode()


def test_missing_knowledge_base_exits_2(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--kb", str(tmp_path / "nope.yaml"), "hello"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bad_flag_exits_2() -> None:
    assert run("ask", "--lang", "de", "hello").returncode == 2
    assert run("frobnicate").returncode == 2


def test_validate_ok_and_warnings(tiny_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--kb", str(tiny_kb_path)]) == 0
    captured = capsys.readouterr()
    assert "valid (3 FAQ intents, 5 in all)" in captured.out
    assert "faqbot: warning:" in captured.err  # the tiny KB has thin smalltalk intents


def test_validate_warns_on_a_translation_under_another_intent(
        translation_elsewhere_kb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warning = "same meaning in two languages? 'how much does delivery"
    assert main(["validate", "--kb", str(translation_elsewhere_kb)]) == 0
    assert warning in capsys.readouterr().err
    # `encoder: none` turns the encoder off: wording is compared, meaning is not.
    with translation_elsewhere_kb.open("a", encoding="utf-8") as kb:
        kb.write("encoder: none\n")
    assert main(["validate", "--kb", str(translation_elsewhere_kb)]) == 0
    assert "same meaning" not in capsys.readouterr().err


def test_evaluate_json(tiny_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--kb", str(tiny_kb_path), "--json", "--folds", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["folds"] == 3
    assert {s["intent"] for s in report["per_intent"]} >= {"delivery", "address"}
    assert 0 <= report["in_scope_accuracy"] <= 1
    assert "threshold" in report["classifier"]
    assert set(report["oos_replies"]) == {"refused", "asked", "answered"}


def test_evaluate_text(tiny_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--kb", str(tiny_kb_path), "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "in-scope accuracy" in out and "out-of-scope recall" in out
    assert "replies the bot would have given" in out and "asked (right one offered)" in out


def test_chat_picks_a_suggestion_by_number(tiny_kb_path: Path) -> None:
    result = run("chat", "--kb", str(tiny_kb_path), stdin="tell me a joke\n3\nquit\n")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "I cannot answer that." in out
    assert "  3. Do you deliver?" in out
    assert "Yes, within 48 hours." in out


def test_run_without_token_starts_console_chat(tiny_kb_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FAQBOT_KB": str(tiny_kb_path)}
    result = run("run", stdin="Do you deliver?\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "Yes, within 48 hours." in result.stdout.decode()
    assert "console chat" in result.stderr.decode()


@pytest.mark.parametrize(("platform", "variable"), [("telegram", "TELEGRAM_BOT_TOKEN"),
                                                    ("discord", "DISCORD_BOT_TOKEN")])
def test_run_platform_without_token_exits_2(platform: str, variable: str) -> None:
    result = run("run", platform, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert f"{variable} is not set" in result.stderr.decode()


@pytest.mark.parametrize("command", ["bench", "benchmark"])
def test_development_tools_are_not_faqbot_commands(command: str) -> None:
    result = run(command)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr.decode()


@pytest.mark.parametrize("args", [
    ["run", "--metrics-port", "70000"], ["run", "--port", "0"], ["stats", "--since", "inf"],
    ["stats", "--since", "nan"], ["review", "--since", "1e300"], ["stats", "--since", "-1"],
    ["stats", "--since", "abc"], ["run", "--metrics-port", "80x"], ["studio", "--port", "-5"],
    ["studio", "--port", "65536"],
])
def test_out_of_range_flag_exits_2_with_one_line(args: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"faqbot {args[0]}: error: argument {args[1]}: ")
    assert error.count("\n") == 1, error
    assert "invalid" not in error, error  # argparse's "invalid _port value" names our code


def test_evaluate_with_too_few_texts_for_the_folds_exits_2(
        tmp_path: Path, tiny_kb_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    kb["intents"][1]["examples"] = {"en": ["address", "where are you"]}  # valid, but thin
    path = tmp_path / "thin.yaml"
    path.write_text(yaml.safe_dump(kb, allow_unicode=True), encoding="utf-8")
    assert main(["evaluate", "--kb", str(path), "--folds", "5"]) == 2
    error = capsys.readouterr().err
    assert error == ("faqbot: error: 5-fold cross-validation needs at least 5 texts per intent "
                     "(its question included); 'address' has 4: add examples, or use fewer "
                     "folds\n")
    assert main(["evaluate", "--kb", str(path), "--folds", "4"]) == 0


def test_run_with_a_bad_pseudonym_key_exits_2_before_starting() -> None:
    env = {"PATH": "/usr/bin:/bin", "TELEGRAM_BOT_TOKEN": TOKEN, "FAQBOT_ID_KEY": "too-short"}
    result = run("run", "telegram", env=env)
    assert result.returncode == 2
    assert result.stderr.decode() == ("faqbot: error: FAQBOT_ID_KEY: the key must be at least "
                                      "16 characters long\n")
