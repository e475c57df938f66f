"""faqbot's front doors: Telegram, Discord, the console chat and the `faqbot` command."""
