"""What LLM tokens cost: the `llm_prices` setting, and the one rule that turns tokens
into a cost."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """What each model's tokens cost, in your currency per million tokens: prompt and
    completion. The `llm_prices` setting: a TOML table `model = [prompt, completion]`, or
    in the environment `model=prompt/completion,model=...`."""

    by_model: tuple[tuple[str, float, float], ...] = ()

    def cost(self, model: str | None, tokens_in: int, tokens_out: int) -> float | None:
        """The cost of these tokens on `model`; None when the model has no price."""
        for name, prompt, completion in self.by_model:
            if name == model:
                return (tokens_in * prompt + tokens_out * completion) / 1_000_000
        return None

    @classmethod
    def parse(cls, raw: object, from_text: bool) -> Prices:
        """From a TOML table, or text; ValueError saying what was expected."""
        if isinstance(raw, Prices):
            return raw
        expected = "a table of model = [prompt price, completion price]"
        if from_text and isinstance(raw, str):
            pairs: dict[str, object] = {}
            for item in filter(None, (part.strip() for part in raw.split(","))):
                model, _, prices = item.rpartition("=")
                pairs[model.strip()] = prices.split("/")
            raw = pairs
        if not isinstance(raw, dict):
            raise ValueError(expected)
        entries = []
        for model, prices in raw.items():
            try:
                prompt, completion = (_price(value) for value in prices)
            except (TypeError, ValueError):
                raise ValueError(f"{expected}; {model!r} has {prices!r}") from None
            if not model:
                raise ValueError(f"{expected}; a model name is empty")
            entries.append((str(model), prompt, completion))
        return cls(tuple(sorted(entries)))


def _price(value: object) -> float:
    number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number
