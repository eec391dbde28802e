"""Compressed inputs and blank lines: a .gz that expands too far is refused part way with one line naming
it (the records before it kept), real files of repeated text still read, and runs of blank lines are
skipped without losing line numbers."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

from paperwire.model import Paper
from paperwire.sources import Rejected, read_source
from paperwire.sources.compressed import MAX_RATIO, MIN_LIMIT_BYTES

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = (FIXTURES / "arxiv_snapshot.jsonl").read_bytes().splitlines()


def write_bomb(path: Path, head: bytes, megabytes: int) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    with open(path, "wb") as fh:
        fh.write(packer.compress(head))
        for _ in range(megabytes):
            fh.write(packer.compress(b"\n" * (1 << 20)))
        fh.write(packer.flush())


def test_a_gzip_bomb_is_refused_after_the_records_before_it(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    write_bomb(bomb, RECORDS[0] + b"\n", MIN_LIMIT_BYTES // (1 << 20) + 8)
    assert bomb.stat().st_size * MAX_RATIO < MIN_LIMIT_BYTES  # what is refused is the floor, not the ratio
    items = list(read_source(bomb))
    assert isinstance(items[0], Paper) and items[0].id == "0704.0001"
    assert len(items) == 2 and isinstance(items[1], Rejected)
    assert items[1].file == str(bomb) and items[1].location == "file"
    assert "gzip bomb" in items[1].reason and f"{MIN_LIMIT_BYTES:,} bytes" in items[1].reason


def test_the_limit_grows_with_the_compressed_size(tmp_path: Path) -> None:
    # 5 MB stored without compression, then 70 MB of newlines: past the floor, within MAX_RATIO of the size
    path = tmp_path / "big.jsonl.gz"
    stored = gzip.compress(b"x" * (1 << 20) + b"\n", compresslevel=0) * 5
    path.write_bytes(stored + gzip.compress(b"\n" * (70 << 20) + RECORDS[0] + b"\n"))  # two gzip members
    assert MIN_LIMIT_BYTES < (75 << 20) < MAX_RATIO * path.stat().st_size
    items = list(read_source(path, "arxiv-snapshot"))
    assert [type(i) for i in items] == [Rejected] * 5 + [Paper], items[-1]
    assert all("invalid JSON" in i.reason for i in items[:5])


def test_real_files_of_repeated_text_still_read(tmp_path: Path) -> None:
    # 20,000 copies of one record compress far more than MAX_RATIO times, but stay under the floor
    packed = tmp_path / "repeated.jsonl.gz"
    packed.write_bytes(gzip.compress((RECORDS[0] + b"\n") * 20_000))
    assert len(gzip.decompress(packed.read_bytes())) > MAX_RATIO * packed.stat().st_size
    items = list(read_source(packed))
    assert len(items) == 20_000 and all(isinstance(i, Paper) for i in items)


def test_blank_line_runs_keep_line_numbers(tmp_path: Path) -> None:
    bad = b'{"id": "2401.00002", "title": "T"'  # cut short: its error names its line
    body = RECORDS[0] + b"\n" + b"\n" * 300_000 + b"  \r\n\t\n" + RECORDS[1] + b"\n" + b" \n" * 5 + bad + b"\n"
    expected_line = 1 + 300_000 + 2 + 1 + 5 + 1
    plain = tmp_path / "blank.jsonl"
    plain.write_bytes(body)
    packed = tmp_path / "blank.jsonl.gz"
    packed.write_bytes(gzip.compress(body))
    for path in (plain, packed):
        items = list(read_source(path, "arxiv-snapshot"))
        assert [type(i) for i in items] == [Paper, Paper, Rejected], path
        assert items[2].location == f"line {expected_line}", items[2]


def test_blank_lines_between_json_records_cost_nothing_of_the_records(tmp_path: Path) -> None:
    daily = json.loads((FIXTURES / "hf_daily_papers.json").read_text())
    path = tmp_path / "daily.json.gz"
    path.write_bytes(gzip.compress(("\n" * 200_000).join(json.dumps(r) for r in daily).encode()))
    items = list(read_source(path, "hf-daily"))
    assert len(items) == len(daily) and all(isinstance(i, Paper) for i in items)
