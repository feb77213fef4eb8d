"""A tiny generated stand-in for MovieLens-100K, written in either layout (no real data in tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recenv.data.movielens import GENRES

MOVIES = [
    # (title, year, genres)
    ("Toy Story", 1995, ("Animation", "Children's", "Comedy")),
    ("GoldenEye", 1995, ("Action", "Adventure", "Thriller")),
    ("Four Rooms", 1995, ("Thriller",)),
    ("Get Shorty", 1995, ("Action", "Comedy", "Drama")),
    ("Misérables, Les", 1995, ("Drama", "Musical")),
    ("Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995, ("Drama",)),
    ("Twelve Monkeys", 1995, ("Drama", "Sci-Fi")),
    ("Babe", 1995, ("Children's", "Comedy", "Drama")),
    ("Dead Man Walking", 1995, ("Drama",)),
    ("Richard III", 1995, ("Drama", "War")),
    ("Seven (Se7en)", 1995, ("Crime", "Thriller")),
    ("Usual Suspects, The", 1995, ("Crime", "Thriller")),
    ("Mighty Aphrodite", 1995, ("Comedy",)),
    ("Postino, Il", 1994, ("Drama", "Romance")),
    ("French Twist (Gazon maudit)", 1995, ("Comedy", "Romance")),
    ("From Dusk Till Dawn", 1996, ("Action", "Comedy", "Crime", "Horror", "Thriller")),
    ("White Balloon, The", 1995, ("Drama",)),
    ("Antonia's Line", 1995, ("Drama",)),
    ("Angels and Insects", 1995, ("Drama", "Romance")),
    ("Muppet Treasure Island", 1996, ("Action", "Adventure", "Comedy", "Musical", "Thriller")),
    ("Braveheart", 1995, ("Action", "Drama", "War")),
    ("Taxi Driver", 1976, ("Drama", "Thriller")),
    ("Rumble in the Bronx", 1995, ("Action", "Adventure", "Crime")),
    ("Birdcage, The", 1996, ("Comedy",)),
    ("Brothers McMullen, The", 1995, ("Comedy",)),
    ("Bad Boys", 1995, ("Action",)),
    ("Apollo 13", 1995, ("Action", "Drama", "Thriller")),
    ("Batman Forever", 1995, ("Action", "Adventure", "Comedy", "Crime")),
]
"""28 movies (more than the latent size 16 a catalog needs), with an accented title and nested parentheses."""

NUM_USERS = 8


def fixture_events(seed: int = 0) -> list[tuple[int, int, int, int]]:
    """(user, item id, rating, timestamp) events: 8 users, 24–40 ratings each, with tied timestamps."""
    rng = np.random.default_rng(seed)
    events = []
    for user in range(1, NUM_USERS + 1):
        count = int(rng.integers(24, 41))
        items = rng.permutation(len(MOVIES))[: min(count, len(MOVIES))] + 1
        start = 880_000_000 + int(rng.integers(0, 10**6))
        time = start
        for item in items:
            time += int(rng.choice([0, 0, 1, 60, 3600]))  # many ratings share their second
            events.append((user, int(item), int(rng.integers(1, 6)), time))
    order = rng.permutation(len(events))  # files are not sorted by user or time
    return [events[i] for i in order]


def write_grouplens(folder: Path, events=None, movies=MOVIES) -> Path:
    """``u.data`` and ``u.item`` (latin-1, ``|``-separated, 19 genre flags) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    events = fixture_events() if events is None else events
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in events), encoding="ascii")
    lines = []
    for number, (title, year, genres) in enumerate(movies, start=1):
        flags = ["1" if genre in genres else "0" for genre in GENRES]
        lines.append("|".join([str(number), f"{title} ({year})", f"01-Jan-{year}", "", "http://us.imdb.com/x", *flags]))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


def write_recbole(folder: Path, events=None, movies=MOVIES) -> Path:
    """``ml-100k.inter`` and ``ml-100k.item`` (UTF-8, RecBole atomic headers) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    events = fixture_events() if events is None else events
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in events]
    (folder / "ml-100k.inter").write_text("\n".join(inter) + "\n", encoding="utf-8")
    item = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    item += [f"{n}\t{title}\t{year}\t{' '.join(genres)}" for n, (title, year, genres) in enumerate(movies, start=1)]
    (folder / "ml-100k.item").write_text("\n".join(item) + "\n", encoding="utf-8")
    return folder
