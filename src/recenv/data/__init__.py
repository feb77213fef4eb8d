"""Real data recenv can draw on. Nothing of it ships with recenv; each loader reads a path you give."""

from recenv.data.movielens import (
    DATA_PATH_VARIABLE,
    GENRES,
    MovieLens100K,
    MovieLensFormatError,
    load_movielens_100k,
    resolve_data_path,
)

__all__ = [
    "DATA_PATH_VARIABLE",
    "GENRES",
    "MovieLens100K",
    "MovieLensFormatError",
    "load_movielens_100k",
    "resolve_data_path",
]
