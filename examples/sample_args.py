"""The command line every example generator takes (examples/omop/generate.py,
examples/fhir/generate.py), so their samples are made, and checked for drift, the same way.

    --out DIR    where the files go (default: sample/ beside the generator)
    --seed N     the random seed (default 16): the same seed writes the same bytes
    --<count> N  how many of the generator's main entity (persons, patients)
"""
import argparse
import os
import random


def parse(script, count, default):
    """Parses the flags, creates the output folder; (args, a Random seeded from --seed)."""
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(script)), "sample"))
    p.add_argument("--seed", type=int, default=16)
    p.add_argument(f"--{count}", type=int, default=default)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    return a, random.Random(a.seed)
