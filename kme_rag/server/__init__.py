"""The OpenAI-compatible editing proxy.

This will hold ``create_app(settings)``: chat and text completions routed through the
editor, the edit admin API, bearer-key auth and OpenAI-style error bodies.
"""
