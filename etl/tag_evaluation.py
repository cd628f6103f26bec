"""Honest figures for the tag classifier: nested cross-validation, by tag and by key.

The report stored with a model (tag_classifier.train) scores the chosen setting on the folds that
chose it, so it leans optimistic, and its folds split tags, so a key's other values sit in
training: `building=yes` is judged knowing `building=house`. Here the whole fitting procedure
(the grid search included) runs inside each outer fold, on two kinds of folds:

- by tag: stratified folds over labels, as the stored report;
- by key: no key in both the training and the test part (inner folds grouped the same way), which
  is what the model faces on a tag whose key the labels never saw.

Beside the model, on the same outer folds: the majority class, and the key-majority baseline (each
test tag gets its key's most frequent label in the training part, the overall majority when the
key is not there). `bench/tag_classifier.py` publishes the table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skyscript_db.etl import tag_classifier as classifier

PROTOCOLS = ("tag", "key")


def folds(protocol: str, seed: int) -> Any:
    """The splitter of a protocol: stratified by label, and grouped by key for 'key'."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    kind = {"tag": StratifiedKFold, "key": StratifiedGroupKFold}[protocol]
    return kind(classifier.FOLDS, shuffle=True, random_state=seed)


def nested_cv(x: np.ndarray, y: np.ndarray, keys: np.ndarray, scoring: str, protocol: str,
              vector_width: int, seed: int = 0) -> dict[str, Any]:
    """Out-of-fold predictions of the model (setting chosen inside each training part) and of
    the baselines; per predictor its accuracy and macro-F1, and each fold's chosen setting.
    The first `vector_width` columns of `x` are text vectors, the rest facts."""
    splitter = folds(protocol, seed)
    predicted = {"model": np.empty_like(y), "key majority": np.empty_like(y),
                 "majority class": np.empty_like(y)}
    chosen = []
    grouped = protocol == "key"
    for train, test in splitter.split(x, y, keys if grouped else None):
        search = classifier.fit_search(x[train], y[train], scoring, folds(protocol, seed), seed,
                                       vector_width, groups=keys[train] if grouped else None)
        chosen.append(search.params)
        predicted["model"][test] = search.predict(x[test])
        overall = np.bincount(y[train]).argmax()
        by_key = _key_majority(keys[train], y[train])
        predicted["key majority"][test] = [by_key.get(k, overall) for k in keys[test]]
        predicted["majority class"][test] = overall
    return {"scores": {name: _scores(y, p) for name, p in predicted.items()},
            "predicted": predicted["model"], "chosen": chosen}


def _key_majority(keys: np.ndarray, y: np.ndarray) -> dict[str, int]:
    """Each key's most frequent label (the smallest label on a tie)."""
    return {key: int(np.bincount(y[keys == key]).argmax()) for key in np.unique(keys)}


def _scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(y, predicted)),
            "macro_f1": float(f1_score(y, predicted, average="macro", labels=sorted(set(y)),
                                       zero_division=0))}
