"""faqbot studio in a real browser: headless Chromium (Debian's package) driven by Playwright.

The curator's scenario end to end, from the printed URL to a running `faqbot run telegram`
answering with the edited text; then the safety promises: no token, no CSRF token, a
question holding a script, a file changed on disk, an invalid edit.

Screenshots of each page are taken on every run; with FAQBOT_UPDATE_SCREENSHOTS=1 they are
written to docs/ (the ones the README shows), else to a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from core.errors import KnowledgeBaseError
from core.knowledge import load_knowledge_base
from tests.auxil.studio import (
    CURATOR_COMMENT,
    HOSTILE,
    OFF_TOPIC,
    REPO,
    studio,
    write_kb,
    write_log,
)
from tests.auxil.telegram import TOKEN, message_update, user
from tests.fakes.telegram_api import FakeTelegramAPI

CHROMIUM = Path("/usr/bin/chromium")
# Only what a headless run on a CI machine needs; nothing that reaches the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NEW_ANSWER = "Oui, livraison en 24 heures partout en France."
OLD_ANSWER = "Oui, sous 48 heures."
RELOAD_WITHIN = 30.0  # seconds: the watcher polls every 2 s, then trains the new model


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():  # never skip: `make test` installs it (apt-get install chromium)
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` (make test does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    if os.environ.get("FAQBOT_UPDATE_SCREENSHOTS") == "1":
        return REPO / "docs"
    return tmp_path / "screenshots"


async def _shoot(page: Page, directory: Path, name: str) -> None:
    path = directory / f"studio-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG")


async def _start_bot(api: FakeTelegramAPI, kb: Path, db: Path) -> asyncio.subprocess.Process:
    """`faqbot run telegram` on the same knowledge-base file (its live reload on)."""
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "FAQBOT_TELEGRAM_API_URL": api.base_url,
           "FAQBOT_KB": str(kb), "FAQBOT_DB": str(db), "PYTHONUNBUFFERED": "1",
           # The test asks again until the new text comes: no rate limit may silence it.
           "FAQBOT_RATE_LIMIT_MESSAGES": "100000"}
    env.pop("DISCORD_BOT_TOKEN", None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", "telegram", cwd=REPO, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


async def _ask_bot(api: FakeTelegramAPI, text: str) -> str:
    """Send a private message to the bot and return the text of its reply."""
    mark = len(api.calls)
    api.push(message_update(text, sender=user(4242, "fr")))
    call = await api.wait_for("sendMessage", since=mark, timeout=30)
    return str(call.params["text"])


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_curator_reviews_tries_edits_checks_and_saves(
        browser: Browser, api: FakeTelegramAPI, tmp_path: Path, screenshots: Path) -> None:
    kb, db = write_kb(tmp_path), tmp_path / "questions.sqlite3"
    write_log(db)
    original = kb.read_text(encoding="utf-8")
    bot = await _start_bot(api, kb, tmp_path / "bot.sqlite3")
    try:
        async with studio(kb, db) as running:
            page = await browser.new_page(viewport={"width": 1100, "height": 800})
            await page.goto(running.url)
            assert "token" not in page.url and page.url.endswith("/inbox")
            await expect(page.locator("h1")).to_have_text("Questions à revoir")
            await page.click("#switch-language")
            await expect(page.locator("h1")).to_have_text("Questions to review")

            # 1. Inbox: the off-topic questions are one group; mark it out of scope.
            group = page.locator("section.group", has_text=OFF_TOPIC[0])
            await expect(group).to_have_count(1)
            await expect(group.locator("h2")).to_contain_text("4 question(s)")
            await _shoot(page, screenshots, "inbox")
            await group.locator("button[value=out_of_scope]").click()
            await expect(page.locator(".notice.ok")).to_contain_text("added to Out of scope")
            await expect(page.locator("section.group", has_text=OFF_TOPIC[0])).to_have_count(0)

            # 2. Try: the reply a user gets, and the scores behind it.
            await page.goto(f"{running.origin}/try")
            await page.fill("input[name=q]", "vous livrez a domicile ?")
            await page.click("form.try button")
            await expect(page.locator("#reply-answer")).to_have_text(OLD_ANSWER)
            await expect(page.locator("#reply-kind")).to_have_text("answer")
            rows = page.locator("table.ranking tr td:first-child")
            await expect(rows).to_have_count(5)
            await expect(rows.first).to_have_text("delivery")
            await expect(page.locator("#cut-offs")).to_contain_text("Refusal threshold: 0.")
            await _shoot(page, screenshots, "try")

            # 3. Knowledge base: edit an answer.
            await page.goto(f"{running.origin}/kb")
            await _shoot(page, screenshots, "kb")
            await page.click("a[href='/kb/intent/delivery']")
            await page.fill("textarea[name='answer.fr']", NEW_ANSWER)
            await page.click("#apply")
            await expect(page.locator(".notice.ok")).to_contain_text("delivery changed")
            await _shoot(page, screenshots, "intent")

            # 4. Before saving: the evaluation before and after, the replies that change.
            await page.click("a.pending")
            await expect(page.locator("#change-list li")).to_have_count(2)
            for table in ("#outcomes-in_scope", "#outcomes-out_of_scope_examples"):
                cells = page.locator(f"{table} tr:nth-child(2) td")
                await expect(cells).to_have_count(4)
                await expect(cells.nth(1)).to_contain_text("%")
            changed = page.get_by_role("row", name=re.compile(r"^livraison "))
            await expect(changed).to_contain_text(OLD_ANSWER)
            await expect(changed).to_contain_text(NEW_ANSWER)
            await _shoot(page, screenshots, "changes")

            await api.wait_for("setMyCommands", lambda call: "language_code" not in call.params,
                               timeout=120)
            assert await _ask_bot(api, "livraison") == OLD_ANSWER
            await page.click("#save")
            saved_at = time.monotonic()
            await expect(page.locator(".notice.ok")).to_contain_text("Saved to")

            # 5. Stats: three pictures.
            await page.goto(f"{running.origin}/stats?days=30")
            await expect(page.locator("section.chart svg")).to_have_count(3)
            await expect(page.locator("#chart-per_day_platform .legend")).to_contain_text(
                "telegram")
            await _shoot(page, screenshots, "stats")

        # The file: the change, still valid, the curator's comment and layout kept.
        text = kb.read_text(encoding="utf-8")
        edited = load_knowledge_base(kb)
        assert edited.intent("delivery").answer["fr"] == NEW_ANSWER  # type: ignore[union-attr]
        assert set(OFF_TOPIC[::2]) <= set(edited.out_of_scope["fr"])
        assert CURATOR_COMMENT in text
        assert text.splitlines()[:10] == original.splitlines()[:10]
        assert (tmp_path / "faq.yaml.prev").read_text(encoding="utf-8") == original

        # The running bot answers with the new text within its reload time.
        reply = await _ask_bot(api, "livraison")
        while reply != NEW_ANSWER and time.monotonic() - saved_at < RELOAD_WITHIN:
            await asyncio.sleep(0.5)
            reply = await _ask_bot(api, "livraison")
        assert reply == NEW_ANSWER
        print(f"the bot answered with the new text {time.monotonic() - saved_at:.1f} s "
              "after the save")
    finally:
        bot.terminate()
        _, errors = await asyncio.wait_for(bot.communicate(), timeout=60)
    assert b"Traceback" not in errors, errors.decode(errors="replace")


@pytest.mark.slow
async def test_no_token_no_csrf_no_script(browser: Browser, tmp_path: Path) -> None:
    kb, db = write_kb(tmp_path), tmp_path / "questions.sqlite3"
    write_log(db)
    async with studio(kb, db) as running:
        stranger = await browser.new_context()
        for path in ("/inbox", "/static/studio.css", "/?token=wrong"):
            response = await (await stranger.new_page()).goto(running.origin + path)
            assert response is not None and response.status == 403, path

        page = await browser.new_page()
        response = await page.goto(running.url)
        assert response is not None
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script" not in policy
        cookie = (await page.context.cookies())[0]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # The logged question holding a script is shown as text, and nothing ran.
        await expect(page.locator("q", has_text=HOSTILE).first).to_be_visible()
        assert await page.locator("script").count() == 0
        assert await page.title() == "faqbot studio"

        # A POST with the session cookie but without (or with a wrong) CSRF token is refused.
        form: dict[str, Any] = {"question": OFF_TOPIC[0], "action": "dismiss"}
        for extra in ({}, {"csrf": "forged"}):
            refused = await page.request.post(f"{running.origin}/inbox",
                                              form={**form, **extra})
            assert refused.status == 403
        await page.reload()
        await expect(page.locator("section.group", has_text=OFF_TOPIC[0])).to_have_count(1)

        # Dismissed questions do not come back, even in a new session.
        await page.locator("section.group", has_text=HOSTILE).locator(
            "button[value=dismiss]").click()
        await expect(page.locator(".notice.ok")).to_contain_text("1 question(s) ignorée(s)")
        await page.context.clear_cookies()
        await page.goto(running.url)
        await expect(page.locator("section.group", has_text=OFF_TOPIC[0])).to_have_count(1)
        await expect(page.locator("section.group", has_text=HOSTILE)).to_have_count(0)
        assert (tmp_path / "questions.sqlite3.dismissed.json").exists()
        # A GET cannot change anything: the actions only exist as POST.
        assert (await page.request.get(f"{running.origin}/changes/save")).status == 405


@pytest.mark.slow
async def test_errors_next_to_the_field_and_a_file_changed_on_disk(
        browser: Browser, tmp_path: Path) -> None:
    kb, db = write_kb(tmp_path), tmp_path / "questions.sqlite3"
    write_log(db)
    async with studio(kb, db) as running:
        page = await browser.new_page()
        await page.goto(running.url)
        await page.goto(f"{running.origin}/kb/intent/delivery")
        await expect(page.locator("textarea[name='examples.en'] ~ .field-warning, "
                                  ".field-warning")).to_have_text(
            "intent 'delivery': only 9 examples in 'en'")
        await page.fill("input[name='question.en']", "")
        await page.click("#apply")
        broken = tmp_path / "broken.yaml"
        broken.write_text(kb.read_text(encoding="utf-8").replace(
            'question: {fr: "Livrez-vous à domicile ?", en: "Do you deliver?"}',
            'question: {fr: "Livrez-vous à domicile ?", en: ""}'), encoding="utf-8")
        with pytest.raises(KnowledgeBaseError) as expected:  # what `faqbot validate` says
            load_knowledge_base(broken)
        wording = str(expected.value).replace(str(broken), str(kb))
        error = page.locator(".field-error")
        await expect(error).to_have_text(wording)

        # The same for the out-of-scope examples: a line another intent holds.
        await page.goto(f"{running.origin}/kb/out_of_scope")
        await page.fill("textarea[name=fr]", "prix du bitcoin\nlivraison")
        await page.click("#apply")
        await expect(page.locator(".field-error")).to_have_text(
            f"{kb}: intent 'out_of_scope', field 'fr': example 'livraison' is also listed "
            "under 'delivery'")

        # A valid edit goes to the draft; the file changes on disk meanwhile; save refuses.
        await page.goto(f"{running.origin}/kb/intent/delivery")
        await page.fill("textarea[name='answer.fr']", NEW_ANSWER)
        await page.click("#apply")
        changed_elsewhere = kb.read_text(encoding="utf-8") + "# edited by hand meanwhile\n"
        kb.write_text(changed_elsewhere, encoding="utf-8")
        await page.goto(f"{running.origin}/changes")
        await expect(page.locator(".notice.error").first).to_contain_text("changé sur le disque")
        await page.click("#save")
        await expect(page.locator(".notice.error").first).to_contain_text("rien n'a été modifié")
        assert kb.read_text(encoding="utf-8") == changed_elsewhere
        assert not (tmp_path / "faq.yaml.prev").exists()

        # A file broken on disk gets a page saying so, in `faqbot validate`'s words.
        kb.write_text(broken.read_text(encoding="utf-8"), encoding="utf-8")
        await page.click("#discard")
        await page.goto(f"{running.origin}/kb")
        await expect(page.locator("pre.problem")).to_have_text(wording)
