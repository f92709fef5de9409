"""Dedup: exact (hash of the whitespace-normalized text) and near-duplicate (datasketch MinHash LSH over
token 5-shingles), for pairs and for whole files (with signatures kept across incremental runs)."""

from __future__ import annotations

import hashlib
import re
import zlib
from operator import methodcaller

_WS = re.compile(r"\s+")


def normalized_hash(text: str) -> str:
    """Hash of the text with whitespace runs collapsed (formatting-only changes hash the same)."""
    # " ".join(split()) == _WS.sub(" ", text).strip(): re's \s and str.isspace() agree on every code point
    return hashlib.sha1(" ".join(text.split()).encode("utf-8", "surrogatepass")).hexdigest()


def shingles(text: str, k: int = 5) -> set[bytes]:
    """Whitespace-token k-shingles (cheap; formatting differences only change a few of them)."""
    return _shingles(text.split(), k)


def _shingles(toks: list[str], k: int = 5) -> set[bytes]:
    if len(toks) < k:
        return {" ".join(toks).encode()} if toks else set()
    joined = set(map(" ".join, zip(*(toks[i:] for i in range(k)))))  # distinct strings <-> distinct bytes
    return {s.encode("utf-8", "surrogatepass") for s in joined}


def _crc32(b: bytes) -> int:
    return zlib.crc32(b)


_STR_ONLY_SPACE = re.compile(rb"[\x1c-\x1f]")
_BYTES_JOIN = b" ".join
_ENCODE = methodcaller("encode", "utf-8", "surrogatepass")
_PERMS: dict[int, object] = {}
_MISSING = object()
_CACHE_MAX = 200_000  # MinHashes kept per cache (~1 KB each)


def _template(num_perm: int):
    """datasketch draws the same permutations for a seed every time: draw them once."""
    if num_perm not in _PERMS:
        from datasketch import MinHash

        _PERMS[num_perm] = MinHash(num_perm=num_perm, seed=1, hashfunc=_crc32)
    return _PERMS[num_perm]


_LSH_PARAMS: dict[tuple[float, int], tuple[int, int]] = {}


def _lsh(threshold: float, num_perm: int):
    """A MinHashLSH; its (bands, rows) optimum is found by numerical integration (~10 ms): once per setting."""
    from datasketch import MinHashLSH
    from datasketch.lsh import _optimal_param

    key = (threshold, num_perm)
    if key not in _LSH_PARAMS:
        _LSH_PARAMS[key] = _optimal_param(threshold, num_perm, 0.5, 0.5)  # MinHashLSH's default weights
    return MinHashLSH(threshold=threshold, num_perm=num_perm, params=_LSH_PARAMS[key])


_FAST_OK: dict[int, bool] = {}
_COLUMNS: dict[int, tuple] = {}  # template id -> permutations (a, b) as column vectors


def _fast_signature(template, sh):
    """MinHash.update_batch's values for the affine32 scheme, computed in a few numpy calls (its per-call
    overhead was most of the cost on short texts). Checked once against update_batch on a sample: if the
    installed datasketch computes anything else, returns None and the caller uses update_batch."""
    ok = _FAST_OK.get(id(template))
    if ok is None:
        ok = _FAST_OK[id(template)] = _check_fast(template)
    if not ok:
        return None
    import numpy as np
    from datasketch.minhash import _fmix

    a, b = _COLUMNS.get(id(template)) or _COLUMNS.setdefault(
        id(template), tuple(np.ascontiguousarray(p[:, None]) for p in template.permutations))
    hv = _fmix(np.fromiter(map(zlib.crc32, sh), dtype=np.uint32, count=len(sh)), 32)
    phv = np.multiply(a, hv)  # (num_perm, shingles): the min runs along contiguous rows
    phv += b
    return phv.min(axis=1)


def _check_fast(template) -> bool:
    try:
        import numpy as np
        from datasketch import MinHash

        if template.scheme != "affine32" or template.permutations[0].dtype != np.uint32:
            return False
        _FAST_OK[id(template)] = True
        for n in (1, 7, 300):
            sample = {f"shingle {i} {i * 7919}".encode() for i in range(n)}
            m = MinHash(num_perm=len(template), seed=1, hashfunc=zlib.crc32, permutations=template.permutations,
                        scheme=template.scheme)
            m.update_batch(list(sample))
            fast = _fast_signature(template, sample)
            if fast.dtype != m.hashvalues.dtype or not np.array_equal(fast, m.hashvalues):
                return False
        return True
    except Exception:  # private helpers moved: use the public path
        return False
    finally:
        _FAST_OK.pop(id(template), None)


class NearDupIndex:
    """MinHash LSH over token 5-shingles: ``add`` then ``is_near_dup`` (Jaccard >= threshold)."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, min_tokens: int = 20,
                 cache: dict | None = None):
        self.cache = cache
        self.threshold = threshold
        self.num_perm = num_perm
        self.min_tokens = min_tokens
        self._lsh = _lsh(threshold, num_perm)
        self._n = 0

    def minhash(self, text: str):
        """The text's MinHash, or None when it has fewer than ``min_tokens`` distinct shingles. With a
        ``cache`` (text -> MinHash) the same text is hashed once per run (pairs are queried again at split)."""
        cache = self.cache
        if cache is not None:
            m = cache.get(text, _MISSING)
            if m is not _MISSING:
                return m
        m = self._minhash(text)
        if cache is not None:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[text] = m
        return m

    def _minhash(self, text: str):
        from datasketch import MinHash

        data = text.encode("utf-8", "surrogatepass")
        # ASCII text without the separators \x1c-\x1f (str.split() splits on them, bytes.split() does not):
        # bytes tokens joined by b" " are exactly the UTF-8 of the str shingles, without encoding each one.
        if len(data) == len(text) and not _STR_ONLY_SPACE.search(data):
            toks, join, encoded = data.split(), _BYTES_JOIN, True
        else:
            toks, join, encoded = text.split(), " ".join, False
        if max(len(toks) - 4, 1 if toks else 0) < self.min_tokens:  # at most that many distinct 5-shingles
            return None
        if len(toks) < 5:
            joined = {join(toks)}
        else:
            joined = set(map(join, zip(toks, toks[1:], toks[2:], toks[3:], toks[4:])))  # the distinct shingles
        if len(joined) < self.min_tokens:
            return None
        if not encoded:
            joined = list(map(_ENCODE, joined))  # distinct strings <-> distinct bytes
        template = _template(self.num_perm)
        fast = _fast_signature(template, joined)
        if fast is not None:
            return MinHash(seed=1, hashfunc=zlib.crc32, hashvalues=fast, permutations=template.permutations,
                           scheme=template.scheme)
        # zlib.crc32 itself as the hash function (same values as _crc32, without a Python call per shingle)
        m = MinHash(num_perm=self.num_perm, seed=1, hashfunc=zlib.crc32, permutations=template.permutations,
                    scheme=template.scheme)
        m.update_batch(list(joined))
        return m

    def query(self, text: str, m=None) -> bool:
        m = m if m is not None else self.minhash(text)
        return m is not None and bool(self._lsh.query(m))

    def query_groups(self, m) -> set[str]:
        """Groups (see ``add``) of the near-duplicates of a MinHash."""
        return {key.rsplit("\0", 1)[0] for key in self._lsh.query(m)} if m is not None else set()

    def add(self, text: str, m=None, group: str = "") -> None:
        m = m if m is not None else self.minhash(text)
        if m is None:
            return
        self._lsh.insert(f"{group}\0{self._n}", m, check_duplication=False)
        self._n += 1

    def check_and_add(self, text: str) -> bool:
        """True if a near-duplicate was already added; otherwise adds the text and returns False."""
        m = self.minhash(text)
        if m is None:
            return False
        if self._lsh.query(m):
            return True
        self._lsh.insert(f"\0{self._n}", m, check_duplication=False)
        self._n += 1
        return False


class FileNearDupIndex:
    """Near-duplicate index of whole files, keyed (e.g. ``repo\\0path``), whose MinHash signatures are kept
    so a later incremental run can compare new files with the ones mined before. Re-adding a key replaces
    its old version; a file never matches its own key."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, min_tokens: int = 20, cache: dict | None = None):
        self._hasher = NearDupIndex(threshold=threshold, num_perm=num_perm, min_tokens=min_tokens, cache=cache)
        self.num_perm = num_perm
        self._lsh = _lsh(threshold, num_perm)
        self.signatures: dict[str, object] = {}  # key -> numpy uint64 array

    def load(self, keys: list[str], matrix) -> None:
        """Signatures saved by :meth:`export` (``matrix`` rows in ``keys`` order)."""
        from datasketch import MinHash

        if matrix is None or len(keys) != len(matrix) or (len(keys) and matrix.shape[1] != self.num_perm):
            return
        scheme = _template(self.num_perm).scheme
        for key, row in zip(keys, matrix):
            m = MinHash(num_perm=self.num_perm, hashvalues=row, scheme=scheme)
            self._lsh.insert(key, m, check_duplication=False)
            self.signatures[key] = row

    def export(self):
        """(keys, uint64 matrix) for saving."""
        import numpy as np

        keys = sorted(self.signatures)
        if not keys:
            return keys, np.zeros((0, self.num_perm), dtype=np.uint64)
        return keys, np.stack([np.asarray(self.signatures[k], dtype=np.uint64) for k in keys])

    def remove(self, key: str) -> None:
        if key in self.signatures:
            self._lsh.remove(key)
            del self.signatures[key]

    def keys(self) -> list[str]:
        return list(self.signatures)

    def check_and_add(self, key: str, text: str) -> bool:
        """True if another key holds a near-duplicate of ``text``; otherwise (re)adds it under ``key``."""
        m = self._hasher.minhash(text)
        self.remove(key)
        if m is None:
            return False
        if set(self._lsh.query(m)) - {key}:
            return True
        self._lsh.insert(key, m, check_duplication=False)
        self.signatures[key] = m.hashvalues
        return False
