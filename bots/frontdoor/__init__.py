"""The front door every platform shares: admission, per-conversation order, the call to
FAQService, a neutral layout of the reply, one retry policy for sends, the interface texts.

An adapter (bots/telegram/, bots/discord/) parses its platform's events into an `Arrival` for
`FrontDoor` and renders the `ReplyLayout` it gets back; docs/architecture.md walks a question
through.
"""
