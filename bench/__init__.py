"""``make bench``: how fast the library and the app are on this machine.

Run ``python -m bench`` (``--quick`` for a smoke run, ``--help`` for the options). It prints a
table and writes ``bench/results.json`` with the machine, the package versions and every
measurement. Timings are medians (and p95) over repeated runs after a warm-up; the
reference pipeline (built like the seed projects') is timed in the same process on the same
clips, so the ratio between the two stays meaningful on a busy machine where the absolute
numbers do not. Nothing here asserts a timing: the targets are reported, met or missed.

Modules
-------
common     timing helpers, machine description, the clips every measurement uses
reference  the seed-style pipeline (librosa 22.05 kHz, 40 mean MFCCs, 8-layer Conv1D)
library    in-process measurements: one clip, a 60 s timeline, throughput, reference
child      what runs in a fresh process: cold start, latency under an environment setting
server     ``streamlit run``: time to health, first page, first prediction; peak RSS
report     the table (also written into the README's "Speed" section with ``--readme``)
profile    ``python -m bench.profile``: pyinstrument call trees of one prediction
"""
