"""Digest mails: what each active subscriber gets for a period, queued once per subscriber and period.

"New" means written to the store (or listed) since the previous digest of the period, or on the
first digest listed or ingested within the period (a day for daily, a week for weekly), and never
sent to this subscriber before. A subscriber with nothing new gets no mail. A digest holds,
as the subscription asks: recommendations (the linked user's library or one tag), keyword alerts
(saved searches) and trending papers; a paper appears once per mail.

The outbox key is subscriber + period + period day (2025-03-11, or 2025-W11 for weekly), so a
re-run after a crash or a second cron run the same day queues nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from markupsafe import escape

from paperwire.digest.compose import DigestItem, DigestSection, build_message, render_parts
from paperwire.digest.settings import MailSettings
from paperwire.digest.subscriptions import unsubscribe_url
from paperwire.model import Paper
from paperwire.rank.recommend import TRENDING, Recommender
from paperwire.rank.trending import rank_trending
from paperwire.store.accounts import Accounts
from paperwire.store.digest_windows import DigestWindows
from paperwire.store.library import NOT_RELEVANT, READ, Library
from paperwire.store.mail import ACTIVE, MailStore, Subscription

PER_SECTION = 10
PER_ALERT = 5
MAX_PER_MAIL = 25
ENQUEUE_BATCH = 100
# Stand-ins for per-subscriber text in a shared rendering; letters only, so no escaping changes them.
_EMAIL_MARK = "pwmarkEMAILxq"
_UNSUBSCRIBE_MARK = "pwmarkUNSUBSCRIBExq"


def period_key(period: str, day: date) -> str:
    if period == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


def window_start(period: str, day: date) -> date:
    """First day that counts as new: yesterday too for daily (late ingests), seven days for weekly."""
    return day - timedelta(days=7 if period == "weekly" else 1)


def default_content(sub: Subscription) -> dict[str, Any]:
    """What a subscription receives unless it says otherwise."""
    linked = sub.user_id is not None
    return {"trending": True, "recommendations": linked, "tag": None, "alerts": linked, "searches": []}


@dataclass
class EnqueueReport:
    queued: int = 0
    already_queued: int = 0
    nothing_new: int = 0
    subscribers: int = 0
    candidates: int = 0


@dataclass
class Digest:
    sections: list[DigestSection] = field(default_factory=list)

    @property
    def paper_ids(self) -> list[str]:
        return [item.paper.id for section in self.sections for item in section.items]


class DigestBuilder:
    """Builds and queues the digests of one period day. The candidate papers and their trending order
    are computed once; per subscriber only the exclusions and personal sections differ."""

    def __init__(self, home: Path, store: Any, settings: MailSettings, secret: str, period: str, day: date, *,
                 index: Any = None, now: datetime | None = None) -> None:
        self.home, self.store, self.settings, self.secret = home, store, settings, secret
        self.period, self.day = period, day
        self.now = now or datetime.combine(day, time(6, 0), tzinfo=UTC)
        self.mail = MailStore(store)
        self.library = Library(store)
        self._index = index
        self._recommender: Recommender | None = None
        self._rendered: dict[tuple, tuple[str, str]] = {}
        self._alert_hits: dict[str, list[Paper]] = {}
        self.candidates = self._new_papers()
        papers = list({p.id: p for p in store.get_papers(self.candidates).values()}.values())
        self.papers: dict[str, Paper] = {p.id: p for p in papers}
        votes = Accounts(store).local_votes(list(self.papers))
        self.trending = [(r.paper, r.votes) for r in rank_trending(papers, votes, now=self.now)]

    def _new_papers(self) -> list[str]:
        """Papers new in this period day: written to the store since the previous period day's run
        (so late ingests count once), or listed since then. The window is fixed by the first run of
        the day and reused by re-runs, so a crash part-way does not change what is new."""
        windows = DigestWindows(self.store)
        window = windows.fix(self.period, period_key(self.period, self.day), self.day.isoformat())
        first = window_start(self.period, self.day).isoformat()  # for the first digest of this period
        return windows.new_paper_ids(window, first, self.day.isoformat())

    # ------------------------------------------------------------ personal parts

    def index(self) -> Any:
        if self._index is None:
            from paperwire.index import open_index

            self._index = open_index(self.home, self.store)
        return self._index

    def recommender(self) -> Recommender:
        if self._recommender is None:
            self._recommender = Recommender(self.store, self.index(), now=self.now)
        return self._recommender

    def _url(self, paper: Paper) -> str:
        return self.settings.link(f"/papers/{paper.id}")

    def build(self, sub: Subscription) -> Digest:
        """The digest for one subscriber; empty when there is nothing new for them."""
        if not self.candidates:
            return Digest()
        content = {**default_content(sub), **sub.content}
        seen = self.mail.sent_papers(sub.id)
        if sub.user_id is not None:
            # Saved, read and "not relevant" papers stay out of every section, trending included.
            seen |= self._library_papers(sub.user_id)
        digest = Digest()
        room = MAX_PER_MAIL

        def take(title: str, items: list[DigestItem]) -> None:
            nonlocal room
            kept = []
            for item in items:
                if item.paper.id in seen or room <= 0:
                    continue
                seen.add(item.paper.id)
                kept.append(item)
                room -= 1
            if kept:
                digest.sections.append(DigestSection(title, kept))

        if content.get("recommendations") and sub.user_id is not None:
            recs = self.recommender().for_user(sub.user_id, tag=content.get("tag"), limit=PER_SECTION,
                                               candidates=self.candidates, exclude=seen)
            if recs and recs[0].source != TRENDING:  # trending has its own section
                tag = content.get("tag")
                take(f"Recommended for your “{tag}” papers" if tag else "Recommended for you",
                     [DigestItem(r.paper, self._url(r.paper), r.why_text()) for r in recs])
        searches = list(content.get("searches") or [])
        if content.get("alerts") and sub.user_id is not None:
            searches += [q for q in self.library.searches(sub.user_id) if q not in searches]
        for query in searches:
            fresh = [p for p in self._search(query) if p.id not in seen][:PER_ALERT]
            take(f"New for “{query}”", [DigestItem(p, self._url(p), f"matches your alert “{query}”")
                                       for p in fresh])
        if content.get("trending", True):
            items = []
            for paper, votes in self.trending:
                if paper.id not in seen:
                    items.append(DigestItem(paper, self._url(paper), f"{votes} upvote{'s' if votes != 1 else ''}"
                                            if votes else ""))
                    if len(items) >= PER_SECTION:
                        break
            take("Trending", items)
        return digest

    def _library_papers(self, user_id: int) -> set[str]:
        ids = set(self.library.saved(user_id)) | set(self.library.marked(user_id, READ))
        ids |= set(self.library.marked(user_id, NOT_RELEVANT))
        if not ids:
            return ids
        return ids | {p.id for p in self.store.get_papers(list(ids)).values()}  # aliases → current ids

    def _search(self, query: str) -> list[Paper]:
        """New papers matching a keyword alert, best first; each distinct query is searched once per run.

        The subscriber's exclusions are applied by the caller, so this keeps more than PER_ALERT."""
        hits = self._alert_hits.get(query)
        if hits is None:
            from paperwire.index import QueryError

            try:
                found = self.index().search(query, limit=100)
            except QueryError:
                found = []
            hits = [h.paper for h in found if h.paper.id in self.papers]
            self._alert_hits[query] = hits
        return hits

    # ------------------------------------------------------------ queueing

    def dedupe_key(self, sub: Subscription) -> str:
        return f"digest:{sub.id}:{self.period}:{period_key(self.period, self.day)}"

    def render(self, sub: Subscription, digest: Digest) -> tuple[str, bytes]:
        count = len(digest.paper_ids)
        when = self.day.strftime("%d %b %Y").lstrip("0")
        unsubscribe = unsubscribe_url(self.settings, self.secret, sub)
        return build_message(
            self.settings, to=sub.email, subject=f"paperwire {self.period} digest: {count} new papers, {when}",
            unsubscribe_url=unsubscribe, now=self.now, parts=self._parts(digest, sub.email, unsubscribe))

    def _parts(self, digest: Digest, email: str, unsubscribe: str) -> tuple[str, str]:
        """Text and HTML of a digest. Many subscribers get the same papers (everyone who only takes
        trending), so each distinct digest is rendered once with markers for the per-subscriber bits."""
        key = tuple((s.title, tuple((i.paper.id, i.why) for i in s.items)) for s in digest.sections)
        parts = self._rendered.get(key)
        if parts is None:
            count = len(digest.paper_ids)
            when = self.day.strftime("%d %b %Y").lstrip("0")
            context = {"heading": f"Your {self.period} paperwire digest · {when}",
                       "intro": f"{count} new paper{'s' if count != 1 else ''} "
                                f"{'today' if self.period == 'daily' else 'this week'}, picked for you.",
                       "sections": digest.sections, "period": self.period, "email": _EMAIL_MARK}
            parts = render_parts(self.settings, "digest", context, _UNSUBSCRIBE_MARK)
            if len(self._rendered) > 10_000:
                self._rendered.clear()
            self._rendered[key] = parts
        text, html = parts
        return (text.replace(_EMAIL_MARK, email).replace(_UNSUBSCRIBE_MARK, unsubscribe),
                html.replace(_EMAIL_MARK, str(escape(email))).replace(_UNSUBSCRIBE_MARK, str(escape(unsubscribe))))

    def enqueue(self, sub: Subscription, report: EnqueueReport) -> None:
        key = self.dedupe_key(sub)
        if self.mail.has_mail(key):
            report.already_queued += 1
            return
        digest = self.build(sub)
        if not digest.paper_ids:
            report.nothing_new += 1
            return
        message_id, message = self.render(sub, digest)
        if self.mail.enqueue(dedupe_key=key, subscription_id=sub.id, kind="digest", recipient=sub.email,
                             message_id=message_id, message=message, paper_ids=digest.paper_ids) is None:
            report.already_queued += 1
        else:
            report.queued += 1

    def enqueue_all(self, subscriptions: list[Subscription] | None = None,
                    advance: Callable[[int], None] | None = None) -> EnqueueReport:
        subs = subscriptions if subscriptions is not None else self.mail.subscriptions(period=self.period,
                                                                                       status=ACTIVE)
        report = EnqueueReport(subscribers=len(subs), candidates=len(self.candidates))
        # A batch of subscribers per transaction: still all-or-nothing per mail (a crash loses only
        # uncommitted whole mails, which the re-run queues), far fewer commits.
        for start in range(0, len(subs), ENQUEUE_BATCH):
            batch = subs[start:start + ENQUEUE_BATCH]
            with self.store.transaction():
                for sub in batch:
                    self.enqueue(sub, report)
            if advance:
                advance(len(batch))
        return report

