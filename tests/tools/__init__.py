"""Test tools: a stand-in Bot API and helper processes, for tests and benchmarks."""
