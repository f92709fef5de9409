"""A small BM25 index over code chunks, kept current one file at a time.

Postings are compact arrays (chunk ids and term counts) per identifier, so a 10k-file repository's index
stays in tens of megabytes. A re-indexed file's old chunks are marked dead (skipped when scoring) and the
postings are purged of dead chunks when they pile up. Scoring is vectorized with numpy, imported on first
use; terms in more than a fifth of the chunks are skipped (their weight is next to nothing). A term's scores
(the chunks holding it and its weight in each) are kept between searches until the index changes: typing, and
the indexer's pairs at one commit, ask about the same terms again and again.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass

K1 = 1.2
B = 0.75
COMMON = 0.2  # terms in more than this share of the chunks are not scored
SCORED_KEPT = 4_000_000  # most (chunk, weight) entries of terms' scores kept between searches (~32 MB)


@dataclass(frozen=True)
class Hit:
    chunk: int
    score: float


class BM25:
    def __init__(self) -> None:
        self._post: dict[str, tuple[array, array]] = {}  # term -> (chunk ids 'I', counts 'H')
        self.owner: array = array("I")  # chunk -> owner id (the file)
        self.length: array = array("I")  # chunk -> number of terms
        self.alive = bytearray()
        self.live = 0
        self.dead = 0
        self._total_len = 0
        self._scored: dict[str, tuple | None] = {}  # term -> (chunk ids, scores) until the next change
        self._scored_size = 0
        self._arrays: tuple | None = None  # (alive mask, owners) until the next change

    def _changed(self) -> None:
        self._scored.clear()
        self._scored_size = 0
        self._arrays = None

    def __len__(self) -> int:
        return self.live

    def add(self, owner: int, terms: Counter) -> int:
        """A new chunk of `owner` with its term counts; returns its id."""
        self._changed()
        cid = len(self.owner)
        self.owner.append(owner)
        n = sum(terms.values())
        self.length.append(n)
        self.alive.append(1)
        self.live += 1
        self._total_len += n
        for term, count in terms.items():
            post = self._post.get(term)
            if post is None:
                post = self._post[term] = (array("I"), array("H"))
            post[0].append(cid)
            post[1].append(min(count, 65535))
        return cid

    def remove(self, cid: int) -> None:
        if self.alive[cid]:
            self._changed()
            self.alive[cid] = 0
            self.live -= 1
            self.dead += 1
            self._total_len -= self.length[cid]

    def maybe_compact(self, min_dead: int = 20_000) -> bool:
        """Purge dead chunks from the postings once they are many (and a quarter of all)."""
        if self.dead < min_dead or self.dead * 4 < len(self.owner):
            return False
        import numpy as np

        self._changed()
        alive = np.frombuffer(bytes(self.alive), dtype=np.uint8).astype(bool)
        for term in list(self._post):
            ids, counts = self._post[term]
            a = np.frombuffer(ids, dtype=np.uint32).copy()
            keep = alive[a]
            if keep.all():
                continue
            if not keep.any():
                del self._post[term]
                continue
            kept_counts = np.frombuffer(counts, dtype=np.uint16).copy()[keep]
            self._post[term] = (array("I", a[keep].tobytes()), array("H", kept_counts.tobytes()))
        self.dead = 0
        return True

    def search(self, terms: set[str] | list[str], k: int = 8, skip_owner: int | None = None) -> list[Hit]:
        """The `k` best live chunks for a query of terms (a set: a query's repeats do not count)."""
        n = len(self.owner)
        if not self.live or not terms:
            return []
        import numpy as np

        scores = np.zeros(n, dtype=np.float32)
        touched = False
        for term in set(terms):
            scored = self._scored.get(term, False)
            if scored is False:
                scored = self._term_scores(term)
                size = len(scored[0]) if scored is not None else 0
                if self._scored_size + size > SCORED_KEPT:
                    self._scored.clear()
                    self._scored_size = 0
                self._scored[term] = scored
                self._scored_size += size
            if scored is not None:
                scores[scored[0]] += scored[1]
                touched = True
        if not touched:
            return []
        if skip_owner is not None:
            scores[self._state()[2] == skip_owner] = 0
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        best = sorted(((float(scores[i]), int(i)) for i in top if scores[i] > 0), key=lambda t: (-t[0], t[1]))
        return [Hit(cid, s) for s, cid in best]

    def _state(self) -> tuple:
        """(alive mask, chunk lengths, chunk owners) as numpy arrays, made once per change of the index."""
        import numpy as np

        if self._arrays is None:
            # copies, never views: an array exporting its buffer could not grow while a view is alive
            self._arrays = (np.frombuffer(bytes(self.alive), dtype=np.uint8).astype(bool),
                            np.frombuffer(self.length, dtype=np.uint32).copy(),
                            np.frombuffer(self.owner, dtype=np.uint32).copy())
        return self._arrays

    def _term_scores(self, term: str):
        """(live chunk ids, their BM25 weights) of one term; None when it scores nothing (absent, or common)."""
        import numpy as np

        post = self._post.get(term)
        if post is None:
            return None
        alive, lengths, _ = self._state()
        ids = np.frombuffer(post[0], dtype=np.uint32).copy()
        live = alive[ids]
        df = int(live.sum())
        if df == 0 or (df > COMMON * self.live and self.live >= 50):
            return None
        ids = ids[live]
        tf = np.frombuffer(post[1], dtype=np.uint16).copy()[live].astype(np.float32)
        avg = self._total_len / self.live
        idf = math.log(1 + (self.live - df + 0.5) / (df + 0.5))
        return ids, (idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[ids] / avg))).astype(np.float32)
