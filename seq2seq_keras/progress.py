"""Progress on long work: a tqdm bar counted in sentences over batched loops (translation, alignment)."""

from __future__ import annotations


def progress_batches(iterable, enabled: bool, desc: str, *, total_items: int, batch_size: int):
    """Yield from ``iterable`` (batch starts) with a tqdm bar counted in sentences (``enabled``: show it)."""
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(total=total_items, desc=desc, unit="sent", leave=True) as bar:
        for item in iterable:
            yield item
            bar.update(min(batch_size, total_items - item))
