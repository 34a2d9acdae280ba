"""LLM tag parsing: model aliases, output validation, and an async OpenAI-compatible client."""
