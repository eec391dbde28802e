"""A paper first known by its title, then by its arXiv id, is re-keyed in the store: the search index
follows, and keeps no entry under the old id."""

from __future__ import annotations

from pathlib import Path

from paperwire.index import open_index
from paperwire.model import make_paper
from paperwire.store import open_store

TITLE = "Quasi-Periodic Oscillations of Accreting Neutron Stars in Tidal Streams"
ABSTRACT = "We study quasi-periodic oscillations of neutron stars accreting from tidal streams of gas."


def test_rekeyed_paper_leaves_its_old_id(store_home: Path) -> None:
    store = open_store(store_home)
    try:
        store.upsert_papers([make_paper(title=TITLE, abstract=ABSTRACT, listed_on="2024-05-02", source="test"),
                             make_paper(title="Another paper on galaxies", abstract="Galaxies and their halos.",
                                        listed_on="2024-05-02", source="test")])
        index = open_index(store_home, store, embedder="static")
        old_id = next(h.id for h in index.search("quasi-periodic neutron stars", mode="lexical"))
        assert not old_id.startswith("2405.")
        store.upsert_papers([make_paper(title=TITLE, abstract=ABSTRACT, arxiv_id="2405.01234v1",
                                        listed_on="2024-05-02", source="test")])
        index.update()
        report = index.verify()
        assert report.ok, report.problems
        hits = [h.id for h in index.search("quasi-periodic neutron stars", mode="lexical")]
        assert old_id not in hits
        new_ids = [h for h in hits if h.startswith("2405.01234")]
        assert len(new_ids) == 1 and old_id in store.aliases_of(new_ids)
        assert old_id not in index.dense
    finally:
        store.close()
