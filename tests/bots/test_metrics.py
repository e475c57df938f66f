"""Metrics: what /healthz says of the platforms and the question log, and the fingerprint."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import yaml

from bots.metrics import Metrics, MetricsServer
from core import load_knowledge_base


def test_the_fingerprint_follows_the_content(tiny_kb_path: Path, tmp_path: Path) -> None:
    kb = load_knowledge_base(tiny_kb_path)
    raw = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    raw["intents"][0]["answer"]["en"] = "Open from 8 am to 5 pm."
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    fingerprint = kb.fingerprint()
    assert len(fingerprint) == 12 and int(fingerprint, 16) >= 0
    assert load_knowledge_base(tiny_kb_path).fingerprint() == fingerprint
    assert load_knowledge_base(edited).fingerprint() != fingerprint


def test_each_metrics_object_has_a_registry_of_its_own() -> None:
    first, second = Metrics(["telegram"]), Metrics(["telegram"])
    first.replies.labels("telegram", "answer").inc()
    assert first.registry.get_sample_value("faqbot_replies_total",
                                           {"platform": "telegram", "kind": "answer"}) == 1
    assert second.registry.get_sample_value("faqbot_replies_total",
                                            {"platform": "telegram", "kind": "answer"}) is None


def test_healthy_once_every_started_platform_is_connected() -> None:
    assert not Metrics().healthy  # nothing started: nothing serves
    metrics = Metrics(["telegram", "discord"])
    assert metrics.registry.get_sample_value("faqbot_platform_connected",
                                             {"platform": "discord"}) == 0
    metrics.set_connected("telegram", True)
    assert not metrics.healthy
    metrics.set_connected("discord", True)
    assert metrics.healthy
    metrics.set_connected("telegram", False)
    assert not metrics.healthy


def test_a_standby_process_is_healthy_and_says_who_leads() -> None:
    metrics = Metrics(["telegram", "discord"])
    metrics.set_connected("discord", True)
    metrics.set_leader("telegram", False, "host-b:812")
    assert metrics.healthy  # another process serves Telegram
    metrics.set_leader("discord", True, "host-a:77")
    assert metrics.health_detail() == ("discord: leader (host-a:77)\n"
                                       "telegram: standby (leader: host-b:812)\n")
    metrics.set_leader("telegram", True, "host-a:77")
    assert not metrics.healthy  # leading Telegram, but not connected to it yet
    assert metrics.registry.get_sample_value("faqbot_leader", {"platform": "telegram"}) == 1


def test_the_question_log_is_reported_without_failing_the_health_check() -> None:
    metrics = Metrics(["telegram"])
    metrics.set_connected("telegram", True)
    problem: list[str] = []
    metrics.follow_question_log(lambda: problem[0] if problem else None)
    assert metrics.notes() == []
    assert metrics.registry.get_sample_value("faqbot_question_log_up") == 1
    problem.append("question log: database is locked")
    assert metrics.notes() == ["question log: database is locked"]
    assert metrics.registry.get_sample_value("faqbot_question_log_up") == 0
    assert metrics.healthy


async def test_health_endpoint_turns_200_when_connected_with_notes_and_leaders() -> None:
    metrics = Metrics(["telegram"])
    metrics.follow_question_log(lambda: "question log: disk full")
    metrics.set_leader("telegram", True, "host-a:77")
    endpoint = MetricsServer(metrics)
    await endpoint.start()
    try:
        assert endpoint.port > 0  # the port the system chose
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{endpoint.port}"
            async with session.get(f"{url}/healthz") as starting:
                assert starting.status == 503
                assert (await starting.text()).startswith("starting: ")
            metrics.set_connected("telegram", True)
            async with session.get(f"{url}/healthz") as ready:
                assert ready.status == 200
                assert await ready.text() == ("ok\ntelegram: leader (host-a:77)\n"
                                              "question log: disk full\n")
            async with session.get(f"{url}/metrics") as exposition:
                assert exposition.headers["Content-Type"].startswith("text/plain")
                assert 'faqbot_platform_connected{platform="telegram"} 1.0' in (
                    await exposition.text())
    finally:
        await endpoint.close()
