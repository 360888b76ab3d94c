"""Short versions of `make chaos`: the same scenarios (chaos/), at a size `make test` can afford, each with a
fixed seed so a run is repeatable (`python -m chaos` draws a fresh one every time)."""

SEED = 20240611
