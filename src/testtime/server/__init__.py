"""The OpenAI-compatible server: test-time compute behind /v1/chat/completions."""
