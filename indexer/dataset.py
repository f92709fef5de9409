"""The pairs dataset on disk: ``datasets`` save_to_disk + parquet + manifest.json, written atomically.

Layout of an output directory (``datasets.load_from_disk(DIR)`` loads it as a DatasetDict):
    dataset_dict.json      DatasetDict.save_to_disk: splits "train" and "test" ...
    train/ test/           ... one folder per split
    manifest.json          DatasetManifest (repos + heads, config hash, counts, filters, secrets, fingerprint)
    parquet/train.parquet  the same rows as parquet
    parquet/test.parquet
    pool.parquet           every mined pair before the split (incremental runs re-split it)
    index_state.json       what was mined: per repo head, commits (sha, time), path -> blob sha; file hashes
    near_dup.npy           MinHash signatures of the mined HEAD files (keys in index_state.json)

Everything is written to a temporary sibling directory and renamed into place: an interrupted run leaves
the previous dataset intact. An output directory holding a different dataset is refused unless forced.

This module is the one owner of these file names: everything else reads a dataset through it
(load_pairs / load_with_manifest, split_rows, has_dataset, indexed_head, state_path, read_manifest), and of
how a row's columns read (row_context: a FIM pair's repository context; datasets from before that column
load as before and their rows have none).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

from copilot.core.files import read_json
from copilot.core.types import TrainingPair, UserInputError

MANIFEST = "manifest.json"
STATE = "index_state.json"
POOL = "pool.parquet"
SIGNATURES = "near_dup.npy"
PARQUET_DIR = "parquet"
SPLITS = ("train", "test")
COLUMNS = [f.name for f in fields(TrainingPair)]


def _features():
    from datasets import Features, Value

    types = {"commit_time": "int64", "span_start": "int64", "span_end": "int64", "multiline": "bool"}
    return Features({c: Value(types.get(c, "string")) for c in COLUMNS})


def row_context(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A FIM row's stored repository context as the engines take it, ((path, snippet), ...): () for none, for
    rows mined without it (datasets from before the column, context_tokens_repo = 0) and if unreadable."""
    value = row.get("context")
    if not value:
        return ()
    try:
        items = json.loads(value) if isinstance(value, str) else value
        return tuple((str(s["path"]), str(s["text"])) for s in items)
    except (ValueError, TypeError, KeyError):
        return ()


def has_context(rows) -> bool:
    """Whether any of `rows` (dicts or a Dataset) was mined with repository context ("[]" counts: mined with
    it, nothing found)."""
    if hasattr(rows, "column_names"):
        if "context" not in rows.column_names:
            return False
        return any(bool(v) for v in rows["context"])
    return any(bool(r.get("context")) for r in rows)


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserInputError(f"{path}: unreadable manifest ({e}); use --force to replace the dataset") from None


def has_dataset(out: Path) -> bool:
    """Whether `out` holds a written pairs dataset (its manifest is there)."""
    return (Path(out) / MANIFEST).is_file()


def state_path(out: Path) -> Path:
    """index_state.json of the dataset in `out`: what was mined (per repo head, commits, blob shas)."""
    return Path(out) / STATE


def read_state(out: Path) -> dict[str, Any]:
    path = state_path(out)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def indexed_head(out: Path) -> str | None:
    """The HEAD the dataset in `out` was last mined at (its first repo); None when nothing readable was mined."""
    state = read_json(state_path(out), {})
    return next(iter((state.get("repos") or {}).values()), {}).get("head")


def split_rows(out: Path, split: str) -> list[dict[str, Any]]:
    """The rows of one split of the dataset in `out` (from its parquet copy); [] when there is none."""
    return _parquet_rows(Path(out) / PARQUET_DIR / f"{split}.parquet")


def read_pool(out: Path) -> list[dict[str, Any]]:
    return _parquet_rows(Path(out) / POOL)


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def read_signatures(out: Path):
    """(keys, uint64 matrix) of the near-duplicate signatures saved by the previous run."""
    import numpy as np

    path = Path(out) / SIGNATURES
    keys = read_state(out).get("near_dup_keys", [])
    if not path.is_file():
        return [], None
    return keys, np.load(path, allow_pickle=False)


def check_target(out: Path, identity: dict[str, Any], force: bool) -> dict[str, Any] | None:
    """The previous manifest when ``out`` holds the same dataset (same repos and config) -> incremental run;
    None for a fresh run. Refuses (UserInputError) to touch a different dataset unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return None
    manifest = None
    try:
        manifest = read_manifest(out)
    except UserInputError:
        if not force:
            raise
    if force:
        return None
    if manifest is None:
        raise UserInputError(f"{out} is not empty and holds no pairs dataset; use --force to replace it")
    previous = manifest.get("extra", {}).get("identity")
    if not isinstance(previous, dict):
        raise UserInputError(f"{out} holds a dataset without an identity; use --force to replace it")
    if previous.get("repos") != identity["repos"]:
        raise UserInputError(
            f"{out} already holds a dataset of other repositories ({', '.join(previous.get('repos', []))}); "
            f"use --force to replace it")
    if previous.get("config_hash") != identity["config_hash"]:
        raise UserInputError(
            f"{out} holds a dataset built with other settings (config {previous.get('config_hash')}, now "
            f"{identity['config_hash']}); use --force to rebuild it")
    return manifest


def write_dataset(out: Path, splits: dict[str, list[dict[str, Any]]], pool: list[dict[str, Any]],
                  state: dict[str, Any], manifest: dict[str, Any], signatures=None) -> None:
    """Write everything into a temporary sibling directory, then rename it into place."""
    import datasets
    import pyarrow as pa
    from datasets import Dataset, DatasetDict, DatasetInfo, NamedSplit
    from datasets.table import InMemoryTable

    datasets.disable_progress_bars()
    import pyarrow.parquet as pq

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        features = _features()
        schema = features.arrow_schema  # carries the features as "huggingface" metadata
        pool_table = pa.Table.from_pydict(_columns(pool), schema=schema)
        # The splits are rows of the pool (the same dicts): taken from its table, not converted again.
        at = {id(r): i for i, r in enumerate(pool)}
        tables = {}
        for name in SPLITS:
            rows = splits.get(name, [])
            idx = [at.get(id(r), -1) for r in rows]
            tables[name] = (pool_table.take(pa.array(idx, type=pa.int64())) if -1 not in idx
                            else pa.Table.from_pydict(_columns(rows), schema=schema))
        # Built from arrow tables directly, with a fingerprint of our own: Dataset.from_dict re-encodes every
        # value in Python and hashes the whole table with dill to make one (~40% of the write time).
        tag = str(manifest.get("fingerprint") or uuid.uuid4().hex)
        dd = DatasetDict({name: Dataset(InMemoryTable(tables[name]), info=DatasetInfo(features=features.copy()),
                                        split=NamedSplit(name),
                                        fingerprint=hashlib.sha256(f"{tag}:{name}:{len(tables[name])}".encode()
                                                                   ).hexdigest()[:16])
                          for name in SPLITS})
        dd.save_to_disk(str(tmp))
        (tmp / PARQUET_DIR).mkdir()
        for name in SPLITS:
            pq.write_table(tables[name], tmp / PARQUET_DIR / f"{name}.parquet")
        pq.write_table(pool_table, tmp / POOL)
        if signatures is not None:
            import numpy as np

            keys, matrix = signatures
            state = {**state, "near_dup_keys": keys}
            np.save(tmp / SIGNATURES, matrix, allow_pickle=False)
        # Plain writes: the whole folder is renamed into place (_swap), and these keep the default file mode.
        (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {c: [r.get(c) for r in rows] for c in COLUMNS}


def _swap(tmp: Path, out: Path) -> None:
    if out.exists():
        backup = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, backup)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(backup, out)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, out)


def load_pairs(out: Path, split: str | None = None):
    """Load the saved dataset (a DatasetDict of the splits in its dataset_dict.json, or one split).
    An empty split loads as an empty Dataset (datasets 5.2 cannot load a saved split with zero rows).
    A missing, foreign or damaged dataset is a UserInputError saying so (the trainer shows it as is)."""
    from datasets import Dataset, DatasetDict, load_from_disk

    out = Path(out)
    if not out.is_dir():
        raise UserInputError(f"dataset not found: {out}")
    parts = {}
    for name in _saved_splits(out):
        try:
            state = json.loads((out / name / "state.json").read_text(encoding="utf-8"))
            parts[name] = (load_from_disk(str(out / name)) if state.get("_data_files")
                           else Dataset.from_dict(_columns([]), features=_features()))
        except (FileNotFoundError, ValueError, OSError, IndexError, json.JSONDecodeError) as exc:
            raise UserInputError(f"{out}: split {name!r} is unreadable ({exc})") from None
    dd = DatasetDict(parts)
    return dd[split] if split else dd


def load_with_manifest(out: Path):
    """-> (DatasetDict, manifest dict): what training and evaluation read. A missing manifest is {}."""
    dd = load_pairs(out)
    path = Path(out) / MANIFEST
    manifest: dict[str, Any] = {}
    if path.is_file():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserInputError(f"{path}: unreadable dataset manifest: {exc}") from None
    return dd, manifest


def _saved_splits(out: Path) -> list[str]:
    """The split names recorded in dataset_dict.json (DatasetDict.save_to_disk)."""
    index = out / "dataset_dict.json"
    try:
        splits = json.loads(index.read_text(encoding="utf-8"))["splits"] if index.is_file() else None
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise UserInputError(f"{out} is not a pairs dataset (unreadable {index.name}: {exc})") from None
    if splits is None:
        if (out / "state.json").is_file():
            raise UserInputError(f"{out} is a single split; expected a dataset with 'train' and 'test' splits")
        raise UserInputError(f"{out} is not a pairs dataset (no dataset_dict.json; build one with `copilot index`)")
    return list(splits)
