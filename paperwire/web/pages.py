"""The HTML pages: feed by day/week/month, trending, top, search, paper pages, submit, accounts."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote_plus

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from markupsafe import Markup

from paperwire.digest.compose import InvalidEmail, validate_email
from paperwire.model import InvalidPaperId, Paper, canonical_id, make_paper, parse_arxiv_id
from paperwire.passwords import (
    MAX_PASSWORD,
    hash_password,
    needs_rehash,
    password_problem,
    username_problem,
    verify_password,
)
from paperwire.rank import trending
from paperwire.store import ADDED, PaperNotFound
from paperwire.store.accounts import UsernameTaken
from paperwire.store.library import Library
from paperwire.web import submission
from paperwire.web.author_routes import query_authors
from paperwire.web.comment_routes import comment_counts
from paperwire.web.periods import BadPeriod, Period, day_period, month_key, month_period, week_key, week_period
from paperwire.web.security import SESSION_COOKIE, SESSION_MAX_AGE, RateLimited
from paperwire.web.site import MAX_QUERY_CHARS, SearchUnavailable, Site, json_error
from paperwire.web.topic_routes import paper_topic, rising_topics
from paperwire.web.views import Card, highlighter, make_cards, paper_formulas, paper_markdown

PAGE_SIZE = 30
MAX_PAGE = 200
MAX_SEARCH_PAGE = 10
# What a form field may carry before the framework refuses it; the limits users meet are lower and
# are checked in the routes, so that the form comes back with the reason and what was typed.
FORM_CEILING = 100_000
SUBMIT_LIMITS = {"title": submission.TITLE_MAX, "abstract_min": submission.ABSTRACT_MIN,
                 "abstract_max": submission.ABSTRACT_MAX}


def build_router(site: Site) -> APIRouter:
    router = APIRouter(include_in_schema=True, tags=["pages"])

    def cards_for(request: Request, papers: list[Paper], local_votes: dict[str, int] | None = None) -> list[Card]:
        return site_cards(site, request, papers, local_votes)

    def feed_page(request: Request, period: Period, page: int, *, rising: bool = False) -> Response:
        def load() -> dict[str, Any]:
            listings = site.listings()
            papers = listings.ranked(period.first, period.last, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            data = {"total": listings.count_between(period.first, period.last), "papers": papers,
                    "votes": site.accounts().local_votes([p.id for p in papers]),
                    "prev_key": period.prev_key, "next_key": period.next_key, "days": []}
            if period.kind == "day":  # step over days without papers; a strip of the days around
                data["days"], data["prev_key"], data["next_key"] = listings.days_near(period.first, 3)
            return data

        # The same for every reader until the database changes; who voted for what is added per user.
        data = site.cached(("feed", period.kind, period.key, page), load)
        day = date.fromisoformat(period.first)
        total = data["total"]
        pages = max(1, -(-total // PAGE_SIZE))
        if page > pages:
            return _no_such_page(site, request, page, pages, period.label)
        return site.render(
            request, "feed.html", period=period, cards=cards_for(request, data["papers"], data["votes"]),
            total=total, page=page, pages=pages, prev_key=data["prev_key"],
            next_key=data["next_key"], week_of=week_key(day), month_of=month_key(day), day_of=period.first,
            days=data["days"], rising=rising_topics(site) if rising else [])

    @router.get("/", summary="The daily feed on the newest day that has papers")
    def home(request: Request, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        return site.shared_page(request, lambda: feed_page(request, day_period(site.anchor_day()), page,
                                                           rising=page == 1))

    @router.get("/papers/date/{day}", summary="The feed of one listing day")
    def by_day(request: Request, day: str, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        return site.shared_page(request, lambda: feed_page(request, _period(day_period, day), page))

    @router.get("/papers/week/{week}", summary="The feed of one ISO week (YYYY-Www)")
    def by_week(request: Request, week: str, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        return site.shared_page(request, lambda: feed_page(request, _period(week_period, week), page))

    @router.get("/papers/month/{month}", summary="The feed of one month (YYYY-MM)")
    def by_month(request: Request, month: str, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        return site.shared_page(request, lambda: feed_page(request, _period(month_period, month), page))

    @router.get("/trending", summary="Papers by votes with a time decay")
    def trending_page(request: Request) -> Response:
        def build() -> Response:
            ranked = trending_papers(site, limit=PAGE_SIZE)
            cards = cards_for(request, [r.paper for r in ranked])
            best = ranked[0].score if ranked else 0.0
            for card, r in zip(cards, ranked, strict=True):
                card.score, card.score_note = r.score, trending.score_note(r, best)
            return site.render(request, "trending.html", cards=cards, formula=trending.FORMULA,
                               gravity=trending.GRAVITY, window_days=trending.TRENDING_WINDOW_DAYS)

        return site.shared_page(request, build, vary=(datetime.now(UTC).strftime("%H:%M"),))

    @router.get("/top", summary="Most upvoted papers of the last week, month or year")
    def top_page(request: Request, period: Annotated[str, Query(pattern="^(week|month|year)$")] = "week",
                 page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        days = trending.TOP_PERIODS[period]
        first, last = trending.window(site.today(), days)  # the period up to now, whatever was listed last

        def load() -> dict[str, Any]:
            listings = site.listings()
            papers = listings.ranked(first, last, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            total = listings.count_between(first, last)
            # A short period is followed by the same-length period up to the newest listing day before it.
            span = trending.earlier_window(listings, first, days) if total < PAGE_SIZE else None
            earlier = listings.ranked(*span, limit=PAGE_SIZE - total) if span else []
            return {"total": total, "papers": papers, "earlier": earlier, "span": span,
                    "votes": site.accounts().local_votes([p.id for p in papers + earlier])}

        def build() -> Response:
            data = site.cached(("top", first, last, page), load)
            total = data["total"]
            return site.render(request, "top.html", cards=cards_for(request, data["papers"], data["votes"]),
                               earlier=cards_for(request, data["earlier"], data["votes"]), span=data["span"],
                               period=period, first=first, last=last, page=page,
                               pages=max(1, -(-total // PAGE_SIZE)), total=total)

        return site.shared_page(request, build)

    @router.get("/search", summary="Search page: hybrid keyword and semantic search with filters")
    def search_page(
        request: Request,
        q: Annotated[str, Query(max_length=FORM_CEILING)] = "",
        mode: Annotated[str, Query(pattern="^(hybrid|lexical|semantic)$")] = "hybrid",
        cat: Annotated[str, Query(max_length=40)] = "",
        date_from: Annotated[str, Query(alias="from", max_length=10)] = "",
        date_to: Annotated[str, Query(alias="to", max_length=10)] = "",
        page: Annotated[int, Query(ge=1, le=FORM_CEILING)] = 1,
    ) -> Response:
        return site.shared_page(request, lambda: search_results(request, q, mode, cat, date_from, date_to, page),
                                by_index=True)

    def search_results(request: Request, q: str, mode: str, cat: str, date_from: str, date_to: str,
                       page: int) -> Response:
        context: dict[str, Any] = {"q": q, "mode": mode, "cat": cat, "date_from": date_from, "date_to": date_to,
                                   "page": page, "cards": [], "error": None, "more": False,
                                   "too_long": len(q) > MAX_QUERY_CHARS,  # shown in the box only, not repeated
                                   "authors": query_authors(q) if len(q) <= MAX_QUERY_CHARS else []}
        if context["too_long"]:
            context["error"] = (f"Your search is {len(q):,} characters long; a search can be at most "
                                f"{MAX_QUERY_CHARS} characters. Shorten it and search again.")
        elif page > MAX_SEARCH_PAGE:
            context["error"] = (f"Results stop at page {MAX_SEARCH_PAGE}: add words or filters to narrow "
                                "the search down.")
        elif q.strip():
            try:
                hits = site.search(q, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, mode=mode,
                                   categories=[cat] if cat else None, date_from=date_from.strip() or None,
                                   date_to=date_to.strip() or None)
                context["more"] = len(hits) > PAGE_SIZE and page < MAX_SEARCH_PAGE
                hits = hits[:PAGE_SIZE]
                cards = cards_for(request, [h.paper for h in hits])
                mark = highlighter(q)
                for card, hit in zip(cards, hits, strict=True):
                    card.snippet = mark(hit.snippet, paper_formulas(hit.paper))
                context["cards"] = cards
            except ValueError as exc:  # QueryError (bad dates too): say what is wrong with the query
                context["error"] = str(exc)
            except SearchUnavailable as exc:  # the page reloads itself until the index is there
                context["error"] = str(exc)
                return site.render(request, "search.html", status_code=503, unavailable=True, **context)
        if context["error"] and "application/json" in request.headers.get("accept", ""):
            return json_error(422, context["error"])  # a tool asking for JSON gets the API's kind of answer
        return site.render(request, "search.html", status_code=422 if context["error"] else 200, **context)

    @router.get("/submit", summary="Form to submit a paper")
    def submit_form(request: Request, arxiv_id: Annotated[str, Query(max_length=200)] = "") -> Response:
        return site.render(request, "submit.html", form={"arxiv_id": arxiv_id}, errors={}, limits=SUBMIT_LIMITS)

    @router.post("/submit", summary="Submit a paper by arXiv id or pasted metadata")
    def submit(
        request: Request,
        csrf_token: Annotated[str, Form(max_length=200)] = "",
        # Generous ceilings against abuse only: the limits users meet are checked below, in words.
        arxiv_id: Annotated[str, Form(max_length=FORM_CEILING)] = "",
        title: Annotated[str, Form(max_length=FORM_CEILING)] = "",
        abstract: Annotated[str, Form(max_length=FORM_CEILING)] = "",
        authors: Annotated[str, Form(max_length=FORM_CEILING)] = "",
        categories: Annotated[str, Form(max_length=FORM_CEILING)] = "",
        links: Annotated[str, Form(max_length=FORM_CEILING)] = "",
        metadata: Annotated[str, Form(max_length=FORM_CEILING)] = "",
    ) -> Response:
        site.check_csrf(request, csrf_token)
        user = site.current_user(request)
        form = {"arxiv_id": arxiv_id, "title": title, "abstract": abstract, "authors": authors,
                "categories": categories, "links": links, "metadata": metadata}

        def again(status: int, errors: dict[str, str], headers: dict[str, str] | None = None) -> Response:
            """The form once more, with what was typed and what is wrong with it."""
            response = site.render(request, "submit.html", status_code=status, form=form, errors=errors,
                                   limits=SUBMIT_LIMITS)
            response.headers.update(headers or {})
            return response

        if user is None:
            return again(401, {"": "Log in to submit papers."})
        try:
            site.take(("submit", f"user:{user['id']}"))
        except RateLimited as exc:
            return again(429, {"": str(exc)}, {"Retry-After": str(exc.retry_after)})
        store = site.store()
        if metadata.strip():
            if len(metadata) > submission.PASTE_MAX:
                return again(422, {"metadata": f"The pasted text is {len(metadata):,} characters long; the limit "
                                               f"is {submission.PASTE_MAX:,}. Paste one record only."})
            try:
                pasted = submission.paper_from_paste(metadata)
            except ValueError as exc:
                return again(422, {"metadata": str(exc)})
            problems = submission.paper_problems(pasted, pasted=True)
            if problems:
                return again(422, problems)
            return _store_submission(site, user, dataclasses.replace(
                pasted, listed_on=site.today(), source="submission", submitted_by=user["username"]))
        arxiv = parse_arxiv_id(arxiv_id) if arxiv_id.strip() else None
        if arxiv_id.strip() and not arxiv:
            return again(422, {"arxiv_id": f"“{arxiv_id.strip()[:60]}” is not an arXiv id: give one such as "
                                           "2401.01234 or https://arxiv.org/abs/2401.01234."})
        if not title.strip() and not abstract.strip():
            if arxiv is None:
                return again(422, {"": "Give an arXiv id, or type in the title and abstract, or paste a record."})
            try:
                existing = store.get_paper(arxiv.id)
            except PaperNotFound:
                return again(422, {"arxiv_id": f"arXiv:{arxiv.id} is not known here yet (this server reads no "
                                               "network). Paste its title and abstract below to add it."})
            site.accounts().record_submission(user["id"], existing.id, "unchanged")
            response = RedirectResponse(f"/papers/{existing.id}", status_code=303)
            return site.notice(response, "Already listed: this paper is on the site.")
        extra_links, link_error = submission.split_links(links)
        paper = make_paper(
            title=title, abstract=abstract, arxiv_id=str(arxiv) if arxiv else None, source="submission",
            authors=submission.split_authors(authors), categories=submission.split_categories(categories),
            listed_on=site.today(), submitted_by=user["username"],
            extra_links=[] if link_error else extra_links,
        )
        problems = submission.paper_problems(paper)
        if link_error:
            problems.setdefault("links", link_error)
        if problems:
            return again(422, problems)
        return _store_submission(site, user, paper)

    @router.get("/papers/{paper_id:path}.md", summary="A paper page as Markdown", response_class=PlainTextResponse)
    def paper_md(request: Request, paper_id: str) -> Response:
        paper = _paper_or_404(site, paper_id)
        votes = paper.upvotes + site.accounts().local_votes([paper.id]).get(paper.id, 0)
        url = str(request.url_for("paper_page", paper_id=paper.id))
        return PlainTextResponse(paper_markdown(paper, votes, url), media_type="text/markdown; charset=utf-8")

    @router.get("/papers/{paper_id:path}", summary="A paper page", name="paper_page")
    def paper_page(request: Request, paper_id: str) -> Response:
        return site.shared_page(request, lambda: paper_page_for(request, paper_id), by_index=True)

    def paper_page_for(request: Request, paper_id: str) -> Response:
        try:
            paper = _paper_or_404(site, paper_id)
        except HTTPException:
            return _missing_paper(site, request, paper_id)
        if paper.id != paper_id:
            return RedirectResponse(f"/papers/{paper.id}", status_code=301)
        user = site.current_user(request)
        if user:  # the library controls show whether the paper is saved (and where), read, not relevant
            from paperwire.web.library_routes import library_cards

            card = library_cards(site, user["id"], [paper])[0]
        else:
            card = cards_for(request, [paper])[0]
        similar: list[Card] = []
        similar_note = None
        try:
            index = site.index(wait=0.5)
            hits = site.cached(("similar", paper.id, index.revision),
                               lambda: index.similar(paper.id, limit=6, snippets=False))
            similar = cards_for(request, [h.paper for h in hits])
        except SearchUnavailable as exc:
            similar_note = str(exc)
        except (PaperNotFound, ValueError):
            similar_note = "No similar papers yet."
        return site.render(request, "paper.html", card=card, similar=similar, similar_note=similar_note,
                           topic=paper_topic(site, paper.id))

    @router.post("/papers/{paper_id:path}/vote", summary="Upvote a paper, or take the vote back")
    def vote(request: Request, paper_id: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
             action: Annotated[str, Form(pattern="^(up|down|toggle)$")] = "toggle") -> Response:
        site.check_csrf(request, csrf_token)
        wants_json = "application/json" in request.headers.get("accept", "")
        user = site.current_user(request)
        if user is None:
            if wants_json:
                raise HTTPException(401, "log in to vote")
            return RedirectResponse(f"/login?next=/papers/{paper_id}", status_code=303)
        site.allow("vote", f"user:{user['id']}")
        paper = _paper_or_404(site, paper_id)
        accounts = site.accounts()
        on = {"up": True, "down": False}.get(action, not accounts.has_voted(user["id"], paper.id))
        accounts.set_vote(user["id"], paper.id, on)
        votes = paper.upvotes + accounts.local_votes([paper.id]).get(paper.id, 0)
        if wants_json:
            return Response(json.dumps({"id": paper.id, "voted": on, "upvotes": votes}),
                            media_type="application/json")
        back = request.headers.get("referer", "")
        target = _local_path(back) or f"/papers/{paper.id}"
        return RedirectResponse(target, status_code=303)

    # ------------------------------------------------------------ accounts

    @router.get("/signup", summary="Sign-up form")
    def signup_form(request: Request) -> Response:
        return site.render(request, "signup.html", error=None, username="", email="")

    @router.post("/signup", summary="Create an account")
    def signup(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
               username: Annotated[str, Form(max_length=FORM_CEILING)] = "",
               password: Annotated[str, Form(max_length=FORM_CEILING)] = "",
               email: Annotated[str, Form(max_length=FORM_CEILING)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        username, email = username.strip(), email.strip()

        def again(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
            response = site.render(request, "signup.html", status_code=status, error=error, username=username,
                                   email=email)
            response.headers.update(headers or {})
            return response

        client = f"ip:{_client(request)}"
        try:
            # Counted both ways until the outcome is known: accounts made, and refused attempts.
            ticket = site.take(("signup", client), ("signup_failed", client))
        except RateLimited as exc:
            return again(429, str(exc), {"Retry-After": str(exc.retry_after)})
        error = None
        error = username_problem(username) or (_email_problem(email) if email else None) or \
            password_problem(password, user_inputs=(username, email, "paperwire"))
        if error is None:
            try:
                user_id = site.accounts().create_user(username, hash_password(password), email or None)
            except UsernameTaken:
                error = "That name is taken: choose another."
        if error:
            ticket.give_back("signup")
            return again(422, error)
        ticket.give_back("signup_failed")
        return _logged_in(site, request, user_id, "/", "Welcome to paperwire.")

    @router.get("/login", summary="Log-in form")
    def login_form(request: Request, next: Annotated[str, Query(max_length=FORM_CEILING)] = "/") -> Response:
        return site.render(request, "login.html", error=None, username="", next=_local_path(next[:300]) or "/")

    @router.post("/login", summary="Log in")
    def login(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
              username: Annotated[str, Form(max_length=FORM_CEILING)] = "",
              password: Annotated[str, Form(max_length=FORM_CEILING)] = "",
              next: Annotated[str, Form(max_length=FORM_CEILING)] = "/") -> Response:
        site.check_csrf(request, csrf_token)
        target = _local_path(next[:300]) or "/"

        def again(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
            response = site.render(request, "login.html", status_code=status, error=error, username=username,
                                   next=target)
            response.headers.update(headers or {})
            return response

        name, client = username.strip().lower()[:64], _client(request)
        try:
            # Wrong passwords are limited per name and address together, so that one address guessing
            # cannot lock the account's owner out; a higher ceiling per name holds against many addresses.
            ticket = site.take(("login", f"{client}|{name}"), ("login_name", name), ("login_address", client))
        except RateLimited as exc:
            return again(429, str(exc), {"Retry-After": str(exc.retry_after)})
        accounts = site.accounts()
        user = accounts.user_by_name(username.strip()) if len(username.strip()) <= 64 else None
        if not verify_password(user["password_hash"] if user else None, password[:MAX_PASSWORD]) or user is None:
            return again(401, "Wrong name or password.")
        ticket.give_back("login", "login_name", "login_address")  # only wrong passwords count
        if needs_rehash(user["password_hash"]):
            accounts.set_password_hash(user["id"], hash_password(password))
        return _logged_in(site, request, user["id"], target, f"Logged in as {user['username']}.")

    @router.post("/logout", summary="Log out")
    def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        site.current_user(request)
        token = getattr(request.state, "session_token", None)
        if token:
            site.accounts().end_session(token)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return site.notice(response, "Logged out.")

    @router.get("/account", summary="Your account: votes, submissions, export, deletion")
    def account(request: Request) -> Response:
        user = site.current_user(request)
        if user is None:
            return RedirectResponse("/login?next=/account", status_code=303)
        data = site.accounts().export_user(user["id"])
        voted_ids = [v["paper_id"] for v in data.get("votes", [])][-50:]
        papers = site.store().get_papers(voted_ids)
        voted = cards_for(request, [papers[i] for i in reversed(voted_ids) if i in papers])
        submitted_ids = [s["paper_id"] for s in data.get("submissions", [])][-50:]
        found = site.store().get_papers(submitted_ids)
        submitted = [found[i] for i in dict.fromkeys(reversed(submitted_ids)) if i in found]
        return site.render(request, "account.html", voted=voted, submitted=submitted, error=None)

    @router.get("/account/export.json", summary="Download all your data as JSON")
    def export(request: Request) -> Response:
        user = site.require_user(request)
        data = site.accounts().export_user(user["id"])
        body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="paperwire-{user["username"]}.json"',
            "Cache-Control": "no-store"})

    @router.post("/account/delete", summary="Delete your account and its data")
    def delete_account(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
                       password: Annotated[str, Form(max_length=FORM_CEILING)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        user = site.require_user(request)
        name = user["username"].lower()
        try:
            site.take(("login", f"{_client(request)}|{name}"), ("login_name", name))
        except RateLimited as exc:
            return site.render(request, "account.html", status_code=429, voted=[], submitted=[], error=str(exc))
        if not verify_password(user["password_hash"], password[:MAX_PASSWORD]):
            return site.render(request, "account.html", status_code=401, voted=[], submitted=[],
                               error="Wrong password: the account was not deleted.")
        site.accounts().delete_user(user["id"])
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return site.notice(response, "Your account and its data are deleted.")

    @router.get("/about", summary="About this site")
    def about(request: Request) -> Response:
        stats = site.cached(("stats",), lambda: site.store().stats())  # counts over every paper: once per change
        return site.render(request, "about.html", stats=stats, formula=trending.FORMULA)

    return router


def site_cards(site: Site, request: Request, papers: list[Paper],
               local_votes: dict[str, int] | None = None) -> list[Card]:
    """Cards of papers for this request's reader: vote totals, their own votes and Save state."""
    ids = [p.id for p in papers]
    user = site.current_user(request)
    voted = site.accounts().voted_among(user["id"], ids) if user else set()
    cards = make_cards(papers, site.accounts().local_votes(ids) if local_votes is None else local_votes, voted)
    if user:  # the cards' Save buttons say whether the paper is in the reader's library already
        saved = Library(site.store()).tags_of(user["id"], ids)
        for card in cards:
            card.saved = card.id in saved
    written = comment_counts(site, ids)
    for card in cards:
        card.comments += written.get(card.id, 0)
    return cards


def trending_papers(site: Site, *, limit: int, offset: int = 0, now: datetime | None = None) -> list[trending.Ranked]:
    """Trending now (paperwire.rank.trending): the last weeks' papers, topped up with earlier ones."""
    # Scores move with the clock: ranked once a minute (and whenever the database changes).
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)

    def load() -> list[trending.Ranked]:
        candidates = trending.trending_candidates(site.listings(), now.date().isoformat(), limit + offset)
        votes = site.accounts().local_votes([p.id for p in candidates])
        return trending.rank_trending(candidates, votes, now=now)[offset:offset + limit]

    return site.cached(("trending", limit, offset, now), load)


def _store_submission(site: Site, user: dict[str, Any], paper: Paper) -> Response:
    """Add the paper, or merge it into the listing it duplicates (same arXiv id or normalised title)."""
    result = site.store().upsert_papers([paper])
    paper_id, status = next(iter(result.status.items()))
    site.accounts().record_submission(user["id"], paper_id, status)
    site.refresh_index()
    message = {ADDED: "Thanks: the paper is listed today.",
               "updated": "Thanks: the listing now has your additions."}.get(status, "Already listed.")
    return site.notice(RedirectResponse(f"/papers/{paper_id}", status_code=303), message)


def _logged_in(site: Site, request: Request, user_id: int, target: str, message: str) -> Response:
    token = site.accounts().create_session(user_id)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, site.signer.sign_session(token), max_age=SESSION_MAX_AGE, httponly=True,
                        samesite="lax", secure=site.secure_cookies, path="/")
    return site.notice(response, message)


def _paper_or_404(site: Site, paper_id: str) -> Paper:
    try:
        return site.store().get_paper(canonical_id(paper_id))
    except (InvalidPaperId, PaperNotFound):
        raise HTTPException(404, f"no paper with id {paper_id[:80]!r}") from None


def _missing_paper(site: Site, request: Request, paper_id: str) -> Response:
    """A 404 that helps: an arXiv id not listed here links to arXiv and to submitting it."""
    arxiv = parse_arxiv_id(paper_id)
    if arxiv is not None:
        message = (f"arXiv:{arxiv.id} is not listed here yet. It may be on arXiv; if it is, anyone with an "
                   "account can submit it.")
        links = [(f"arXiv:{arxiv.id} on arxiv.org", f"https://arxiv.org/abs/{arxiv.id}"),
                 ("Submit it here", f"/submit?arxiv_id={quote_plus(arxiv.id)}")]
    else:
        message = f"There is no paper with the id “{paper_id[:80]}” here."
        links = [("Search for it", f"/search?q={quote_plus(paper_id[:MAX_QUERY_CHARS])}")]
    return site.render(request, "error.html", status_code=404, status=404, message=message, links=links)


def _no_such_page(site: Site, request: Request, page: int, pages: int, what: str) -> Response:
    """A page number past the end: a 404 that says how many pages there are and links to the last."""
    message = f"There is no page {page} of {what}: it has {pages} page{'' if pages == 1 else 's'}."
    last = f"{request.url.path}?page={pages}" if pages > 1 else request.url.path
    return site.render(request, "error.html", status_code=404, status=404, message=message,
                       links=[(f"Go to page {pages}" if pages > 1 else "Go to the first page", last)])


def _email_problem(email: str) -> str | None:
    try:
        validate_email(email)
    except InvalidEmail:
        return f"“{email[:80]}” does not look like an email address: check it, or leave the field empty."
    return None


def _period(parse: Any, text: str) -> Period:
    try:
        return parse(text)
    except BadPeriod as exc:
        raise HTTPException(404, str(exc)) from None


def _local_path(url: str) -> str | None:
    """A same-site path to go back to, never an off-site redirect."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    path = parsed.path or ""
    if not path.startswith("/") or path.startswith("//") or "\\" in url:
        return None
    return path + (f"?{parsed.query}" if parsed.query else "")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


__all__ = ["build_router", "site_cards", "trending_papers", "Markup"]
