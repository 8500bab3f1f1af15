"""The fuzz test of every reader the CLI exposes (tests/fuzz.py): 40 seeded mutations each, decompression bombs
first, in worker processes with a memory limit; every outcome is exit 0 or a one-line error with exit 2, every
bomb is refused, and no worker's resident memory passes 1 GB."""

from tests.fuzz import MEMORY_PEAK, fuzz
from tests.fuzz_inputs import BOMBS, READERS


def test_every_reader_survives_mutated_files(orbit_path, facade_path, tmp_path):
    outcomes, peaks = fuzz(tmp_path, facade_path, orbit_path, count=40)
    failures = [f"{o['reader']} #{o.get('index')} (seed {o.get('seed')}): {o['problem'][-600:]}"
                for o in outcomes if "problem" in o]
    assert not failures, "\n".join(failures)
    for reader in READERS:
        mine = [o for o in outcomes if o["reader"] == reader]
        assert len(mine) == 40, reader
        assert any(o["rc"] == 2 for o in mine), f"{reader}: no mutation was refused, so none reached its checks"
        assert sum(o.get("bomb", False) for o in mine) == len(BOMBS.get(reader, []))
    assert len(peaks) == 2 and max(peaks) < MEMORY_PEAK, [f"{p / 2**20:.0f} MB" for p in peaks]
