"""Sharding (dataset.shard=K/N), the shard files of a run folder and `codecbench merge`.

The end-to-end tests run the real `codecbench` command on the demo corpus with
cheap settings (identity and Opus 12k, SI-SDR only) and compare a sharded run,
merged, with the same run unsharded; one shard is killed with SIGKILL and resumed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO, comparable_rows, run_cli

from codecbench.datasets.base import Dataset, Item, Shard, Trial, parse_shard, shard_of
from codecbench.errors import CodecbenchError, ConfigError
from codecbench.merge import check_layout, combine, describe, write_combined
from codecbench.store import RowStore, read_rows, rows_path, run_path, shard_records
from codecbench.summary import write_summary

#: a cheap run: two codecs, one metric, 12 demo items (the kill test needs enough rows to land part-way)
ARGS = ["codec=[identity,opus_12k]", "task=[signal]", "task.signal.metrics=[si_sdr]", "dataset.limit=12",
        "workers=0", "batch_size=2", "progress=false"]
N_ROWS = 12 * 2 * 2  # items x codecs x (codec stage + signal)


# ---------------------------------------------------------------------------
# shard selection (datasets/base.py)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec, expected", [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 4 / 4 ", Shard(4, 4)),
                                            (None, None), ("null", None)])
def test_parse_shard(spec, expected):
    assert parse_shard(spec) == expected


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1/0", "-1/2", "1of2", "2", "a/b", 3, "1/2/3"])
def test_parse_shard_names_what_it_expected(spec):
    with pytest.raises(ConfigError) as err:
        parse_shard(spec)
    assert "dataset.shard: expected K/N with 1<=K<=N" in str(err.value) and repr(spec) in str(err.value)


def _dataset(ids: list[str], trials=None) -> Dataset:
    audio = sorted((DEMO / "audio").glob("*.flac"))
    return Dataset([Item(item_id, audio[n % len(audio)]) for n, item_id in enumerate(ids)], trials)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_dataset_whatever_the_item_order(count):
    ids = [f"spk{n % 4}/utt{n:03d}" for n in range(23)]
    whole = _dataset(ids)
    shuffled = list(ids)
    random.Random(count).shuffle(shuffled)
    seen: dict[str, int] = {}
    for index in range(1, count + 1):
        shard, other_order = _dataset(ids), _dataset(shuffled)
        shard.select_shard(f"{index}/{count}")
        other_order.select_shard(f"{index}/{count}")
        kept = [item.id for item in shard]
        assert sorted(kept) == sorted(item.id for item in other_order)  # the order items come in does not matter
        assert kept == [i for i in ids if i in set(kept)]  # dataset order is kept within the shard
        assert len(kept) in (len(ids) // count, -(-len(ids) // count))  # balanced: sizes differ by one at most
        for item_id in kept:
            assert item_id not in seen, f"{item_id} in shards {seen[item_id]} and {index}"
            seen[item_id] = index
        # the record describes the whole dataset; the shard's items and positions are listed beside it
        assert shard.describe() == whole.describe() and shard.fingerprint() == whole.fingerprint()
        record = shard.shard_record()
        assert (record["index"], record["count"], record["items"]) == (index, count, kept)
        assert [ids[p] for p in record["positions"]] == kept
        assert [item.id for item in shard.whole()] == ids and len(shard) == len(kept)
    assert sorted(seen) == sorted(ids)  # every item in exactly one shard
    assert seen == shard_of(ids, count)


def test_shard_round_robin_over_sorted_ids_and_keeps_trials():
    trials = [Trial(1, "c", "a"), Trial(0, "a", "d")]
    dataset = _dataset(["d", "b", "a", "c", "e"], trials)
    dataset.select_shard("2/2")
    assert [item.id for item in dataset] == ["d", "b"]  # sorted: a b c d e -> shard 2 keeps b and d
    assert dataset.trials == trials and dataset.describe()["n_items"] == 5
    with pytest.raises(ConfigError, match="already reduced to shard 2/2"):
        dataset.select_shard("1/2")


def test_more_shards_than_items_gives_empty_shards():
    dataset = _dataset(["a", "b"])
    dataset.select_shard("3/3")
    assert list(dataset) == [] and dataset.describe()["n_items"] == 2


# ---------------------------------------------------------------------------
# shard files (store.py)
# ---------------------------------------------------------------------------


def test_shard_file_names(tmp_path):
    assert rows_path(tmp_path).name == "rows.jsonl" and run_path(tmp_path).name == "run.json"
    assert rows_path(tmp_path, Shard(2, 4)).name == "rows.shard-2-of-4.jsonl"
    assert run_path(tmp_path, (10, 12)).name == "run.shard-10-of-12.json"
    for shard in [(10, 12), (2, 12), (1, 3)]:
        run_path(tmp_path, shard).write_text("{}")
    (tmp_path / "run.shard-x-of-2.json").write_text("{}")
    assert list(shard_records(tmp_path)) == [(1, 3), (2, 12), (10, 12)]


def test_one_writer_per_rows_file(tmp_path):
    row = {"codec": "c", "item": "i", "task": "t", "status": "ok", "values": {}}
    with RowStore(tmp_path, Shard(1, 2)) as store:
        store.append(row)
        with pytest.raises(CodecbenchError, match=r"rows\.shard-1-of-2\.jsonl: expected one writer"):
            RowStore(tmp_path, Shard(1, 2))
        with RowStore(tmp_path, Shard(2, 2)) as other:  # another shard: another file
            assert other.path.name == "rows.shard-2-of-2.jsonl"
    with RowStore(tmp_path, Shard(1, 2)) as again:  # released on close (and when a process dies)
        assert ("c", "i", "t") in again
    assert list(read_rows(tmp_path, Shard(1, 2))) == [row]


def test_layout_refuses_mixing_sharded_and_unsharded_runs(tmp_path):
    run_path(tmp_path, (1, 2)).write_text("{}")
    with pytest.raises(ConfigError, match=r"holds a sharded run \(run.shard-1-of-2.json\); expected dataset.shard=K/2"):
        check_layout(tmp_path, None)
    with pytest.raises(ConfigError, match=r"holds shards of 2 .* found dataset.shard=1/3"):
        check_layout(tmp_path, {"index": 1, "count": 3})
    check_layout(tmp_path, {"index": 2, "count": 2})
    plain = tmp_path / "plain"
    plain.mkdir()
    run_path(plain).write_text(json.dumps({"dataset": {}}))
    with pytest.raises(ConfigError, match=r"holds an unsharded run \(run.json\)"):
        check_layout(plain, {"index": 1, "count": 2})
    check_layout(plain, None)


# ---------------------------------------------------------------------------
# end to end: sharded runs, merge, kill and resume
# ---------------------------------------------------------------------------


def _summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("run_dir")
    return summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An unsharded reference run, and the same run in 2 shards whose first shard was SIGKILLed and resumed."""
    home = tmp_path_factory.mktemp("shard_runs")
    cache = f"paths.cache_dir={home / 'cache'}"
    whole = run_cli("run", *ARGS, f"run_dir={home / 'whole'}", cache)
    assert whole.returncode == 0, whole.stderr[-2000:]

    sharded = home / "sharded"
    command = [sys.executable, "-m", "codecbench.cli", "run", *ARGS, "dataset.shard=1/2", f"run_dir={sharded}",
               f"paths.cache_dir={home / 'cache-killed'}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows_file = rows_path(sharded, (1, 2))
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if rows_file.exists() and rows_file.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = rows_file.read_bytes().count(b"\n")

    first_only = home / "first_only"
    shutil.copytree(sharded, first_only)  # shard 1 killed, shard 2 never started
    for shard in ("1/2", "2/2"):
        done = run_cli("run", *ARGS, f"dataset.shard={shard}", f"run_dir={sharded}", cache)
        assert done.returncode == 0, done.stderr[-2000:]
    return {"home": home, "whole": home / "whole", "sharded": sharded, "first_only": first_only,
            "killed": (process.returncode, killed_at)}


@pytest.mark.slow
def test_killed_shard_resumes_to_exactly_once(runs):
    returncode, killed_at = runs["killed"]
    assert returncode == -signal.SIGKILL
    assert 3 <= killed_at < N_ROWS // 2, "the kill must land part-way through shard 1/2"
    record = json.loads(run_path(runs["sharded"], (1, 2)).read_text())
    assert len(record["sessions"]) == 2 and "finished" not in record["sessions"][0]
    merged = run_cli("merge", str(runs["sharded"]))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert f"2 of 2 shards, 12 items, 2 codec(s) (identity, opus_12k) x 2 stages (codec, signal): {N_ROWS} of " \
           f"{N_ROWS} rows, each exactly once" in merged.stdout
    assert comparable_rows(read_rows(runs["sharded"])) == comparable_rows(read_rows(runs["whole"]))


@pytest.mark.slow
def test_merged_run_equals_the_unsharded_run(runs):
    sharded, whole = runs["sharded"], runs["whole"]
    assert _summary(sharded) == _summary(whole)  # same values, CIs, n, evaluators, dataset fingerprint
    assert _summary(sharded)["complete"] is True
    items = list(dict.fromkeys(row["item"] for row in read_rows(whole)))  # dataset order
    assert [(r["codec"], r["item"], r["task"]) for r in read_rows(sharded)] == [
        (codec, item, task) for codec in ("identity", "opus_12k") for item in items for task in ("codec", "signal")
    ]
    record = json.loads(run_path(sharded).read_text())
    reference = json.loads(run_path(whole).read_text())
    for key in ("dataset", "codecs", "tasks", "resampler", "pipeline_version"):
        assert record[key] == reference[key], key
    assert record["config"]["dataset"]["shard"] is None
    assert record["shards"]["count"] == 2 and record["shards"]["complete"] is True
    assert sorted(record["shards"]["records"]) == ["1/2", "2/2"]
    assert sum(r["n_items"] for r in record["shards"]["records"].values()) == 12
    assert [s["shard"] for s in record["sessions"]] == ["1/2", "1/2", "2/2"]
    # `codecbench report` (write_summary) merges the shard files the same way
    copy = runs["home"] / "report_copy"
    shutil.copytree(sharded, copy)
    for name in ("rows.jsonl", "run.json", "summary.json"):
        (copy / name).unlink()
    assert {k: v for k, v in write_summary(copy).items() if k != "run_dir"} == _summary(whole)
    # the shard files stay; rerunning a finished shard adds nothing
    before = rows_path(sharded, (2, 2)).read_bytes()
    cache = f"paths.cache_dir={runs['home'] / 'cache'}"
    again = run_cli("run", *ARGS, "dataset.shard=2/2", f"run_dir={sharded}", cache)
    assert again.returncode == 0 and rows_path(sharded, (2, 2)).read_bytes() == before


@pytest.mark.slow
def test_resuming_checks_the_folder_layout_first(runs):
    from codecbench.pipeline import merge_run_record

    record = json.loads(run_path(runs["sharded"], (1, 2)).read_text())
    assert len(merge_run_record(runs["sharded"], record)["sessions"]) == 3  # shard 1/2 resumes into its own record
    unsharded = {key: value for key, value in record.items() if key != "shard"}
    with pytest.raises(ConfigError, match="holds a sharded run"):
        merge_run_record(runs["sharded"], unsharded)
    with pytest.raises(ConfigError, match="holds an unsharded run"):
        merge_run_record(runs["whole"], record)


@pytest.mark.slow
def test_merge_lists_missing_shards_and_rows(runs, tmp_path):
    folder = tmp_path / "first_only"
    shutil.copytree(runs["first_only"], folder)
    result = run_cli("merge", str(folder))
    assert result.returncode == 1
    assert "1 of 2 shards" in result.stdout and "INCOMPLETE" in result.stdout
    assert "shard 2/2 missing: no run.shard-2-of-2.json" in result.stdout
    combined = combine(folder)
    assert combined.missing_shards == [2] and not combined.complete
    missing = {key for key, _ in combined.missing}
    stored = {(r["codec"], r["item"], r["task"]) for r in read_rows(folder, (1, 2))}
    assert len(missing) == N_ROWS // 2 - len(stored) and not missing & stored
    some = sorted(missing)[0]
    assert f"missing item={some[1]} codec={some[0]} task={some[2]} (shard 1/2)" in describe(combined, limit=N_ROWS)
    summary = json.loads((folder / "summary.json").read_text())  # incomplete results are still written, and say so
    assert summary["complete"] is False
    assert "Incomplete run" in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_merge_refuses_duplicated_and_misplaced_rows(runs, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(runs["sharded"], folder)
    for name in ("rows.jsonl", "run.json", "summary.json"):
        (folder / name).unlink()
    first, second = rows_path(folder, (1, 2)), rows_path(folder, (2, 2))
    line = first.read_text().splitlines(keepends=True)[0]
    with open(first, "a") as handle:
        handle.write(line)  # the same key twice in its own shard's file
    with open(second, "a") as handle:
        handle.write(line)  # and in a shard it does not belong to
    key = json.loads(line)
    text = f"item={key['item']} codec={key['codec']} task={key['task']}"
    result = run_cli("merge", str(folder))
    assert result.returncode == 1
    assert f"duplicated {text} in rows.shard-1-of-2.jsonl, rows.shard-1-of-2.jsonl" in result.stdout
    assert f"unexpected {text} in rows.shard-2-of-2.jsonl: the item belongs to shard 1/2" in result.stdout
    assert "nothing written" in result.stdout
    assert not (folder / "rows.jsonl").exists() and not (folder / "summary.json").exists()
    with pytest.raises(CodecbenchError, match="not merged"):
        write_combined(combine(folder))
    report = run_cli("report", str(folder))  # report merges first, and refuses the same way
    assert report.returncode == 2 and "duplicated" in report.stderr


@pytest.mark.slow
def test_merge_refuses_shards_of_different_experiments(runs, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(runs["sharded"], folder)
    path = run_path(folder, (2, 2))
    record = json.loads(path.read_text())
    record["dataset"]["fingerprint"] = "0" * 64
    record["tasks"]["signal"]["evaluators"] = {"si_sdr": "another implementation"}
    path.write_text(json.dumps(record))
    result = run_cli("merge", str(folder))
    assert result.returncode == 2
    assert "expected shards of one experiment" in result.stderr
    assert "run.shard-2-of-2.json: dataset" in result.stderr and "differs from run.shard-1-of-2.json" in result.stderr
    assert "task 'signal' evaluators or parameters differ" in result.stderr


@pytest.mark.slow
def test_merge_of_a_folder_that_is_not_sharded(runs):
    result = run_cli("merge", str(runs["whole"]))
    assert result.returncode == 2
    assert "expected a sharded run folder (run.shard-K-of-N.json files" in result.stderr
