"""Recently edited regions of other files: the third source of repository context, after definitions and
similar code (`repo_context.choose` shows them in the room those leave).

Where the edits come from:
- the language server records where each buffer changes (`EditLog`, from didChange ranges), newest first;
- `copilot complete` takes the working tree's uncommitted changes (`git diff HEAD`) and its new files git
  does not track yet (whole, so shown by their last lines), the most recently modified file first;
- a history pair takes the lines its commit added to other files (the commit's other edits, as a developer
  finishing that commit would have made them just before), the files nearest the pair's own first.

A region is the edited lines with `MARGIN` lines around them, at most `MAX_REGION_LINES`, centred on the
line edited last.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

MARGIN = 2  # lines of unchanged code shown around an edited region
MAX_REGION_LINES = 12
MERGE_GAP = 3  # edits this close (in lines) to a remembered one of the same file extend it
MAX_EDITS = 16  # regions remembered


@dataclass(frozen=True)
class Edit:
    path: str  # repository-relative
    start: int  # first edited line (0-based) in the file's current text
    end: int  # last edited line, inclusive
    last: int = -1  # the line edited last (-1: `start`)

    def window(self, n_lines: int) -> tuple[int, int]:
        """The lines (first, last inclusive) shown for this edit in a file of `n_lines` lines."""
        lo, hi = max(0, self.start - MARGIN), min(n_lines - 1, self.end + MARGIN)
        if hi - lo + 1 > MAX_REGION_LINES:
            focus = self.last if self.last >= 0 else self.start
            lo = min(max(lo, focus - MAX_REGION_LINES // 2), hi - MAX_REGION_LINES + 1)
            hi = lo + MAX_REGION_LINES - 1
        return lo, hi


class EditLog:
    """The latest edited regions of a workspace, newest first: nearby edits of a file merge into one region,
    and lines inserted or removed above a region move it (thread-safe)."""

    def __init__(self, limit: int = MAX_EDITS) -> None:
        self.limit = limit
        self._edits: list[Edit] = []
        self._changes: dict[str, int] = {}  # path -> times the index took in its edited text
        self._lock = threading.Lock()

    def record(self, path: str, start: int, old_end: int, new_end: int) -> None:
        """Lines start..old_end of `path` were replaced by lines start..new_end (0-based, inclusive)."""
        delta = new_end - old_end
        with self._lock:
            region = Edit(path, start, max(start, new_end), start if new_end < start else new_end)
            kept: list[Edit] = []
            for e in self._edits:
                if e.path != path:
                    kept.append(e)
                    continue
                if e.start > old_end + MERGE_GAP:  # below the change: moved by it
                    e = replace(e, start=e.start + delta, end=e.end + delta,
                                last=e.last + delta if e.last >= 0 else -1)
                    kept.append(e)
                elif e.end + MERGE_GAP < start:  # above it: untouched
                    kept.append(e)
                else:  # overlapping or close: one region
                    end = e.end + delta if e.end > old_end else max(new_end, start) if e.end >= start else e.end
                    region = replace(region, start=min(region.start, e.start), end=max(region.end, end))
            self._edits = [region] + kept[: self.limit - 1]

    def settled(self, path: str) -> None:
        """The index now holds `path`'s edited text: a choice made since its last edits may be stale."""
        with self._lock:
            self._changes[path] = self._changes.get(path, 0) + 1

    def forget(self, path: str) -> None:
        with self._lock:
            self._edits = [e for e in self._edits if e.path != path]

    def recent(self) -> list[Edit]:
        with self._lock:
            return list(self._edits)

    def stamp(self, exclude: str | None) -> int:
        """How often the index took in edited text of files other than `exclude`: a held context choice for
        `exclude` made before may have missed an edit (edits of the file itself are in its own prompt)."""
        with self._lock:
            return sum(self._changes.values()) - self._changes.get(exclude or "", 0)


class CommitEdits:
    """A commit's edited regions, handed to each of its pairs nearest first: the files sharing more leading
    folders with the pair's file first, in the commit's order otherwise, never the pair's file. The work per
    pair is bounded by `limit` and the folder depth, whatever the commit's size (a vendored import's
    thousands of files included)."""

    def __init__(self, edits: list[Edit]) -> None:
        self.by_file: dict[str, list[Edit]] = {}
        for e in edits:
            self.by_file.setdefault(e.path, []).append(e)
        self.under: dict[tuple[str, ...], list[str]] = {}  # a folder -> the edited files at or below it
        for path in self.by_file:
            parts = tuple(path.split("/")[:-1])
            for k in range(len(parts) + 1):
                self.under.setdefault(parts[:k], []).append(path)

    def nearest(self, rel: str | None, limit: int = MAX_EDITS) -> list[Edit]:
        parts = tuple((rel or "").split("/")[:-1])
        out: list[Edit] = []
        seen = {rel}
        for k in range(len(parts), -1, -1):
            for path in self.under.get(parts[:k], ()):
                if path in seen:
                    continue
                seen.add(path)
                out.extend(self.by_file[path])
                if len(out) >= limit:
                    return out[:limit]
        return out
