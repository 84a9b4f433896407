"""One module per TwiML verb; each exposes `async execute(verb, ctx) -> Step`."""
