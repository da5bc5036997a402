"""testtime: test-time compute scaling for LLM reasoning."""

__version__ = "0.1.0"
