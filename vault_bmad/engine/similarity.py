"""Text similarity: TF-IDF cosine over stemmed tokens, for matching tasks to agents.

Tokens are words split at hyphens, underscores, punctuation and camelCase, lower-cased, with
common English words dropped and Snowball (Porter 2) stems, so "API-design", "api_design"
and "designing APIs" meet. Term weights are log-scaled frequencies times smoothed IDF, as
scikit-learn computes them; each text piece carries its own weight (e.g. tags count double).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import snowballstemmer

WeightedText = Iterable[tuple[str, float]]  # text pieces, each with the weight of its words

_WORD = re.compile(r"[^\W_]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # "apiDesign"; "APIs" stays whole
_STEM_MEMO_LIMIT = 100_000
# fmt: off
STOPWORDS = frozenset((
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most",
    "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our",
    "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that",
    "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours",
))
# fmt: on


class Tokenizer:
    """Turns text into stemmed tokens. Holds a stemmer, so use one per thread."""

    def __init__(self, language: str = "english") -> None:
        self._stemmer = snowballstemmer.stemmer(language)
        self._memo: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        words = _WORD.findall(_CAMEL_BOUNDARY.sub(" ", text))
        return [self._stem(w.lower()) for w in words if w.lower() not in STOPWORDS]

    def _stem(self, word: str) -> str:
        stem = self._memo.get(word)
        if stem is None:
            if len(self._memo) >= _STEM_MEMO_LIMIT:
                self._memo.clear()
            stem = str(self._stemmer.stemWord(word))
            self._memo[word] = stem
        return stem


class TfIdfIndex:
    """A small corpus (e.g. one document per agent) that answers cosine similarity queries."""

    def __init__(
        self, documents: Mapping[str, WeightedText], tokenizer: Tokenizer | None = None
    ) -> None:
        self._tokenize = tokenizer or Tokenizer()
        counts = {doc_id: self._term_counts(pieces) for doc_id, pieces in documents.items()}
        document_frequency: dict[str, int] = {}
        for terms in counts.values():
            for term in terms:
                document_frequency[term] = document_frequency.get(term, 0) + 1
        n = len(counts)
        self._idf = {
            term: math.log((1 + n) / (1 + df)) + 1 for term, df in document_frequency.items()
        }
        self._postings: dict[str, list[tuple[str, float]]] = {}
        self.doc_ids = tuple(counts)
        for doc_id, terms in counts.items():
            for term, weight in self._normalised(terms).items():
                self._postings.setdefault(term, []).append((doc_id, weight))

    def similarities(self, query: WeightedText) -> dict[str, float]:
        """Cosine similarity in [0, 1] between the query and every document."""
        scores = dict.fromkeys(self.doc_ids, 0.0)
        known = {t: c for t, c in self._term_counts(query).items() if t in self._idf}
        for term, weight in self._normalised(known).items():
            for doc_id, doc_weight in self._postings[term]:
                scores[doc_id] += weight * doc_weight
        return {doc_id: min(1.0, score) for doc_id, score in scores.items()}

    def _term_counts(self, pieces: WeightedText) -> dict[str, float]:
        counts: dict[str, float] = {}
        for text, weight in pieces:
            for token in self._tokenize(text):
                counts[token] = counts.get(token, 0.0) + weight
        return counts

    def _normalised(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Log-scaled, IDF-weighted, unit-length term weights."""
        weights = {t: math.log1p(c) * self._idf.get(t, 1.0) for t, c in counts.items() if c > 0}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {t: w / norm for t, w in weights.items()} if norm else {}
