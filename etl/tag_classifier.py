"""The method's two-stage tag classifier: PCA, then logistic regression (scikit-learn).

A tag's features are the text embeddings of "key value" and of the key alone, side by side: the
key's own vector tells `building yes` from `wheelchair yes`, which the sentence alone blurs (it
lifts stage-1 cross-validated accuracy from about 0.82 to about 0.85 with the offline encoder).
PCA reduces the vectors; beside them, standardised and weighted, go the tag's facts
(sql/20_tag_visibility.sql, section tag_facts: how OSM draws the tag and its key, where its
objects lie, what the iD editor makes of them), which carry a tag whose key no label has
(bench/results/tag_classifier.md).

Stage 1 (`visible`): can the tag be seen from above at all? Binary, trained on every label.
Stage 2 (`gsd`): the largest GSD at which it is still seen, one of GSD_CLASSES, trained on the
visible labels only. For each stage the PCA size, the facts' weight, the regularisation C and
the class weights are chosen by stratified 5-fold cross-validation, then the pipeline is refit
on all labels. The report gives, per stage, the out-of-fold predictions of the chosen setting on
the same folds (accuracy, macro-F1, confusion matrix) beside the chosen hyper-parameters.
"""

from __future__ import annotations

import io
import itertools
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # scikit-learn loads on first training, keeping `import skyscript_db` fast
    from sklearn.pipeline import Pipeline

SKLEARN_VERSION = version("scikit-learn")

GSD_CLASSES = (0.1, 0.2, 0.6, 1.0, 10.0)
PCA_SIZES = (64, 128, 256, 512)
C_VALUES = (0.3, 1.0, 3.0, 10.0, 30.0)
CLASS_WEIGHTS = (None, "balanced")
FACT_WEIGHTS = (0.1, 0.3)  # a fact's standardised scale against the PCA components
FOLDS = 5
PARAMS = ("n_components", "fact_weight", "C", "class_weight")


@dataclass
class TagModel:
    """Both fitted stages and their cross-validation report."""

    visible: Pipeline
    gsd: Pipeline
    report: dict[str, Any]

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """p_visible, visible (p ≥ 0.5), the GSD class probabilities (n × 5) and max_gsd_m."""
        p_visible = self.visible.predict_proba(features)[:, list(self.visible.classes_).index(1)]
        proba = np.zeros((len(features), len(GSD_CLASSES)))
        proba[:, self.gsd.classes_] = self.gsd.predict_proba(features)
        return {
            "p_visible": p_visible,
            "visible": p_visible >= 0.5,
            "gsd_proba": proba,
            "max_gsd_m": np.asarray(GSD_CLASSES)[proba.argmax(axis=1)],
        }

    def to_bytes(self) -> bytes:
        import joblib  # here, as below: every command would pay its import

        buffer = io.BytesIO()
        joblib.dump(self, buffer)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(blob: bytes) -> TagModel:
        import joblib

        return joblib.load(io.BytesIO(blob))


def features(tag_vectors: np.ndarray, key_vectors: np.ndarray, facts: np.ndarray) -> np.ndarray:
    """One row per tag: the two text vectors, then the facts (fit_search's `vector_width` says
    where the vectors end)."""
    return np.hstack([tag_vectors, key_vectors, facts]).astype(np.float32)


def gsd_class(max_gsd_m: float) -> int:
    """The index of a labelled GSD in GSD_CLASSES (labels use exactly these values)."""
    return GSD_CLASSES.index(float(max_gsd_m))


def train(features: np.ndarray, visible: np.ndarray, gsd_features: np.ndarray,
          gsd_labels: np.ndarray, vector_width: int, seed: int = 0) -> TagModel:
    """Fit both stages; `gsd_labels` are GSD_CLASSES indices of the visible labels; the first
    `vector_width` columns of the features are text vectors, the rest facts."""
    stage1, report1 = _fit_stage(features, visible.astype(int), "accuracy", vector_width, seed)
    stage2, report2 = _fit_stage(gsd_features, gsd_labels.astype(int), "f1_macro", vector_width,
                                 seed)
    report1["classes"] = ["not visible", "visible"]
    report2["classes"] = [f"{g:g} m" for g in GSD_CLASSES]
    report = {"visible": report1, "gsd": report2, "sklearn": SKLEARN_VERSION, "seed": seed,
              "folds": FOLDS}
    return TagModel(stage1, stage2, report)


def _fit_stage(x: np.ndarray, y: np.ndarray, scoring: str, vector_width: int,
               seed: int) -> tuple[Pipeline, dict]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    search = fit_search(x, y, scoring, folds, seed, vector_width)
    predicted = search.predicted  # the chosen setting's out-of-fold predictions
    labels = sorted(set(y) | set(range(len(GSD_CLASSES) if scoring == "f1_macro" else 2)))
    report = {
        "n": len(y),
        "class_counts": np.bincount(y, minlength=len(labels)).tolist(),
        "params": search.params,
        "cv_score": search.score,
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, average="macro", labels=labels,
                                   zero_division=0)),
        "confusion": confusion_matrix(y, predicted, labels=labels).tolist(),
    }
    return search.estimator, report


@dataclass
class Search:
    """What fit_search chose: the setting, its mean CV score, its out-of-fold predictions, and
    the pipeline with that setting refit on all the data."""

    estimator: Pipeline
    params: dict[str, Any]
    score: float
    predicted: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.predict(x)


def fit_search(x: np.ndarray, y: np.ndarray, scoring: str, folds: Any, seed: int,
               vector_width: int, groups: np.ndarray | None = None) -> Search:
    """Choose a stage's setting (PARAMS) by its mean `scoring` on `folds` (any
    scikit-learn splitter; the first of equals in grid order), then refit the pipeline on all
    of `x`: GridSearchCV's choice, without its cost of copying and caching the pipeline for
    each setting, and with the chosen setting's out-of-fold predictions kept."""
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    splits = list(folds.split(x, y, groups))
    grid = _grid(len(x), vector_width)
    by_size = {size: list(settings) for size, settings in itertools.groupby(grid, lambda g: g[0])}
    # one task per fold and PCA size: 20 even tasks keep both workers busy, 5 folds would not
    tasks = [(fold, size) for fold in range(len(splits)) for size in by_size]
    done = Parallel(n_jobs=-1)(delayed(_scores)(x, y, *splits[fold], by_size[size], scoring,
                                                seed, vector_width) for fold, size in tasks)
    per_fold: list[dict] = [{} for _ in splits]
    for (fold, _), scores in zip(tasks, done):
        per_fold[fold].update(scores)
    mean = {setting: float(np.mean([fold[setting][0] for fold in per_fold])) for setting in grid}
    best = max(mean, key=mean.__getitem__)
    predicted = np.empty_like(y)
    for (_, test), fold in zip(splits, per_fold):
        predicted[test] = fold[best][1]
    # One BLAS thread: on small matrices a second one makes logistic regression many times slower.
    with threadpool_limits(1):
        estimator = _pipeline(*best, seed, vector_width).fit(x, y)
    return Search(estimator, dict(zip(PARAMS, best)), mean[best], predicted)


def _scores(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
            settings: list[tuple], scoring: str, seed: int,
            vector_width: int) -> dict[tuple, tuple[float, np.ndarray]]:
    """The score and test predictions on one fold of each setting (all of one PCA size: the
    features are fitted once for them, the facts then weighted per setting)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import get_scorer

    scorer = get_scorer(scoring)
    size = settings[0][0]
    features = _pipeline(size, 1.0, 1.0, None, seed, vector_width).named_steps["features"]
    fitted, tested = features.fit_transform(x[train]), features.transform(x[test])
    results = {}
    for setting in settings:
        weight = np.r_[np.ones(size), np.full(fitted.shape[1] - size, setting[1])]
        model = _pipeline(*setting, seed, vector_width).named_steps["logreg"]
        with warnings.catch_warnings():
            # A poorly regularised candidate may not converge; it then scores low.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(fitted * weight, y[train])
        weighted = tested * weight
        results[setting] = (scorer(model, weighted, y[test]), model.predict(weighted))
    return results


def _pipeline(size: int, fact_weight: float, c: float, class_weight: str | None, seed: int,
              vector_width: int) -> Pipeline:
    """PCA of the text vectors beside the standardised, weighted facts; logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return Pipeline([
        ("features", ColumnTransformer([
            ("pca", PCA(size, random_state=seed), slice(0, vector_width)),
            ("facts", make_pipeline(StandardScaler(), FunctionTransformer(
                _weigh, kw_args={"weight": fact_weight})), slice(vector_width, None)),
        ])),
        ("logreg", LogisticRegression(C=c, class_weight=class_weight, max_iter=2000,
                                      random_state=seed)),
    ])


def _grid(n: int, dim: int) -> list[tuple[int, float, float, str | None]]:
    """Settings (PARAMS) in GridSearchCV's order; PCA sizes that fit the training part of every
    fold (a small label set gets smaller ones)."""
    largest = min(dim, n - n // FOLDS - 1)
    sizes = [s for s in PCA_SIZES if s <= largest] or [largest]
    return list(itertools.product(sizes, FACT_WEIGHTS, C_VALUES, CLASS_WEIGHTS))


def _weigh(facts: np.ndarray, weight: float) -> np.ndarray:
    return facts * weight


def report_markdown(report: dict[str, Any]) -> str:
    """The CV report as Markdown: per stage the scores, the chosen setting, the confusion matrix."""
    lines = []
    for stage, title in (("visible", "Stage 1: visible at all"),
                         ("gsd", "Stage 2: largest GSD at which visible")):
        r = report[stage]
        classes = r["classes"]
        counts = ", ".join(f"{c} {n}" for c, n in zip(classes, r["class_counts"]))
        lines += [f"### {title}", "",
                  f"{r['n']} labels ({counts}); {report['folds']}-fold CV, seed {report['seed']}.",
                  f"Accuracy **{r['accuracy']:.3f}**, macro-F1 **{r['macro_f1']:.3f}**; chosen: "
                  + ", ".join(f"{k} = {v}" for k, v in r["params"].items()) + ".", "",
                  "| label \\ predicted | " + " | ".join(classes) + " |",
                  "|---" * (len(classes) + 1) + "|"]
        lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |"
                  for c, row in zip(classes, r["confusion"])]
        lines.append("")
    return "\n".join(lines)
