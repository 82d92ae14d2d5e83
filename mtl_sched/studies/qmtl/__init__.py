"""The Q-MTL study (seeds 000 and 001): single-task taggers, Q-MTL and ensembles of single-task
models, with label noise and smaller training sets."""
