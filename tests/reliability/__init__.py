"""Reliability tests (project issue 11): crash/resume, concurrency, determinism, bad input, fuzzing, safety."""
