"""Recall and precision of a free-text scrubber against labelled spans (the demo's ground truth).

A labelled span is found when every one of its characters lies inside spans the scrubber replaced (of any
kind: a card masked as an ID is still masked). A replaced span is correct when it overlaps a labelled one;
precision per kind counts the scrubber's spans of that kind. Character precision is reported too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable


def score(records: Iterable[dict], find: Callable[[str], list]) -> dict[str, dict[str, float]]:
    """Per kind: labelled, found, recall, replaced, correct, precision, and char_precision; plus 'misses'
    and 'false_alarms' (a few examples each) for reading."""
    labelled, found, replaced, correct = Counter(), Counter(), Counter(), Counter()
    chars, true_chars = Counter(), Counter()
    misses, alarms = [], []
    for record in records:
        text, truth = record["text"], record["spans"]
        spans = find(text)
        covered = set()
        for s in spans:
            covered.update(range(s.start, s.end))
        sensitive = set()
        for t in truth:
            sensitive.update(range(t["start"], t["end"]))
            labelled[t["kind"]] += 1
            if all(i in covered for i in range(t["start"], t["end"])):
                found[t["kind"]] += 1
            elif len(misses) < 40:
                misses.append((t["kind"], text[t["start"] : t["end"]], text))
        for s in spans:
            replaced[s.kind] += 1
            chars[s.kind] += s.end - s.start
            true_chars[s.kind] += sum(1 for i in range(s.start, s.end) if i in sensitive)
            if any(i in sensitive for i in range(s.start, s.end)):
                correct[s.kind] += 1
            elif len(alarms) < 40:
                alarms.append((s.kind, text[s.start : s.end], text))
    kinds = sorted(set(labelled) | set(replaced))
    result = {
        k: {
            "labelled": labelled[k],
            "found": found[k],
            "recall": found[k] / labelled[k] if labelled[k] else float("nan"),
            "replaced": replaced[k],
            "correct": correct[k],
            "precision": correct[k] / replaced[k] if replaced[k] else float("nan"),
            "char_precision": true_chars[k] / chars[k] if chars[k] else float("nan"),
        }
        for k in kinds
    }
    result["misses"], result["false_alarms"] = misses, alarms  # type: ignore[assignment]
    return result
