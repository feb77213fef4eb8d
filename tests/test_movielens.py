"""The MovieLens-100K loader and catalog, on tiny generated fixtures in both layouts."""

import numpy as np
import pytest
from movielens_fixture import MOVIES, NUM_USERS, fixture_events, write_grouplens, write_recbole

from recenv.data import DATA_PATH_VARIABLE, MovieLensFormatError, load_movielens_100k


@pytest.fixture(params=["grouplens", "recbole"])
def layout_folder(request, tmp_path):
    write = write_grouplens if request.param == "grouplens" else write_recbole
    return request.param, write(tmp_path / "ml-100k")


def test_both_layouts_read_the_same_users_movies_and_histories(tmp_path):
    grouplens = load_movielens_100k(write_grouplens(tmp_path / "a"))
    recbole = load_movielens_100k(write_recbole(tmp_path / "b"))
    assert (grouplens.layout, recbole.layout) == ("grouplens", "recbole")
    for data in (grouplens, recbole):
        assert data.num_items == len(MOVIES) and data.num_users == NUM_USERS
        assert data.titles[4] == "Misérables, Les" and data.years[4] == 1995
        assert data.titles[5] == "Shanghai Triad (Yao a yao yao dao waipo qiao)"
        assert data.genres[15] == ("Action", "Comedy", "Crime", "Horror", "Thriller")
    np.testing.assert_array_equal(grouplens.histories.items, recbole.histories.items)
    np.testing.assert_array_equal(grouplens.histories.offsets, recbole.histories.offsets)
    np.testing.assert_array_equal(grouplens.timestamps, recbole.timestamps)
    assert grouplens.item_texts() == recbole.item_texts()


def test_every_rating_is_an_interaction_in_time_order(layout_folder):
    _, folder = layout_folder
    data = load_movielens_100k(folder)
    events = fixture_events()
    assert len(data.histories.items) == len(events)  # 1-star ratings count as much as 5-star ones
    for user_index, user in enumerate(data.user_ids):
        mine = sorted((t, i) for u, i, _, t in events if str(u) == user)
        start, end = data.histories.offsets[user_index], data.histories.offsets[user_index + 1]
        assert list(data.timestamps[start:end]) == [t for t, _ in mine]
        # Same events (ties in one second may come in any fixed order).
        assert sorted(data.histories.user(user_index) + 1) == sorted(i for _, i in mine)
    assert list(data.user_ids) == [str(u) for u in range(1, NUM_USERS + 1)]


def test_ties_are_broken_the_same_way_whatever_the_file_order(tmp_path):
    events = fixture_events()
    first = load_movielens_100k(write_recbole(tmp_path / "a", events))
    second = load_movielens_100k(write_recbole(tmp_path / "b", events[::-1]))
    np.testing.assert_array_equal(first.histories.items, second.histories.items)


def test_data_path_from_the_environment_variable_and_parent_folder(tmp_path, monkeypatch):
    write_recbole(tmp_path / "ml-100k")
    monkeypatch.setenv(DATA_PATH_VARIABLE, str(tmp_path))
    assert load_movielens_100k().num_users == NUM_USERS
    monkeypatch.delenv(DATA_PATH_VARIABLE)
    with pytest.raises(MovieLensFormatError, match=f"data_path=.*{DATA_PATH_VARIABLE}.*grouplens.org.*recbole==1.2.1"):
        load_movielens_100k()
    with pytest.raises(MovieLensFormatError, match="no such file or folder"):
        load_movielens_100k(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MovieLensFormatError, match="holds neither u.data"):
        load_movielens_100k(tmp_path / "empty")


@pytest.mark.parametrize("missing", ["u.item", "u.data", "ml-100k.item", "ml-100k.inter"])
def test_a_missing_file_is_named(tmp_path, missing):
    folder = (write_grouplens if missing.startswith("u.") else write_recbole)(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(MovieLensFormatError, match=rf"{missing}: missing"):
        load_movielens_100k(folder)


def test_a_missing_column_is_named_with_file_and_line(tmp_path):
    folder = write_recbole(tmp_path)
    lines = (folder / "ml-100k.inter").read_text().splitlines()
    lines[0] = "user_id:token\titem_id:token\trating:float"
    (folder / "ml-100k.inter").write_text("\n".join(line.rsplit("\t", 1)[0] if i else line for i, line in enumerate(lines)))
    with pytest.raises(MovieLensFormatError, match=r"ml-100k\.inter:1: missing column\(s\) \['timestamp'\]"):
        load_movielens_100k(folder)


def _corrupt_line(path, line_number, replace):
    lines = path.read_bytes().split(b"\n")
    lines[line_number - 1] = replace(lines[line_number - 1])
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("layout", ["grouplens", "recbole"])
def test_an_unknown_item_id_is_named_with_file_and_line(tmp_path, layout):
    folder = (write_grouplens if layout == "grouplens" else write_recbole)(tmp_path)
    name, line = ("u.data", 7) if layout == "grouplens" else ("ml-100k.inter", 7)
    _corrupt_line(folder / name, line, lambda text: b"\t".join([text.split(b"\t")[0], b"9999", *text.split(b"\t")[2:]]))
    with pytest.raises(MovieLensFormatError, match=rf"{name}:{line}: unknown item id '9999'"):
        load_movielens_100k(folder)


@pytest.mark.parametrize("layout", ["grouplens", "recbole"])
def test_a_non_numeric_timestamp_is_named_with_file_and_line(tmp_path, layout):
    folder = (write_grouplens if layout == "grouplens" else write_recbole)(tmp_path)
    name = "u.data" if layout == "grouplens" else "ml-100k.inter"
    _corrupt_line(folder / name, 12, lambda text: b"\t".join([*text.split(b"\t")[:3], b"yesterday"]))
    with pytest.raises(MovieLensFormatError, match=rf"{name}:12: timestamp 'yesterday' is not a number"):
        load_movielens_100k(folder)


def test_wrong_encodings_are_named_with_file_and_line(tmp_path):
    grouplens = write_grouplens(tmp_path / "a")
    # u.item re-saved as UTF-8: "Misérables" (line 5) would silently turn into mojibake.
    text = (grouplens / "u.item").read_bytes().decode("latin-1")
    (grouplens / "u.item").write_bytes(text.encode("utf-8"))
    with pytest.raises(MovieLensFormatError, match=r"u\.item:5: wrong encoding: this line is UTF-8.*latin-1"):
        load_movielens_100k(grouplens)
    recbole = write_recbole(tmp_path / "b")
    # ml-100k.item saved as latin-1: line 6 (after the header) is not valid UTF-8.
    text = (recbole / "ml-100k.item").read_text(encoding="utf-8")
    (recbole / "ml-100k.item").write_bytes(text.encode("latin-1"))
    with pytest.raises(MovieLensFormatError, match=r"ml-100k\.item:6: wrong encoding: byte 0xe9 .* not valid utf-8"):
        load_movielens_100k(recbole)


def test_malformed_lines_are_named(tmp_path):
    grouplens = write_grouplens(tmp_path / "a")
    _corrupt_line(grouplens / "u.item", 3, lambda text: text.rsplit(b"|", 2)[0])
    with pytest.raises(MovieLensFormatError, match=r"u\.item:3: expected 24 '\|'-separated fields"):
        load_movielens_100k(grouplens)
    grouplens = write_grouplens(tmp_path / "b")
    _corrupt_line(grouplens / "u.data", 2, lambda text: text.replace(b"\t", b" "))
    with pytest.raises(MovieLensFormatError, match=r"u\.data:2: expected 4 tab-separated fields"):
        load_movielens_100k(grouplens)
    recbole = write_recbole(tmp_path / "c")
    _corrupt_line(recbole / "ml-100k.item", 4, lambda text: text.replace(b"Thriller", b"Cartoon"))
    with pytest.raises(MovieLensFormatError, match=r"ml-100k\.item:4: unknown genre\(s\) \['Cartoon'\]"):
        load_movielens_100k(recbole)
    recbole = write_recbole(tmp_path / "d")
    _corrupt_line(recbole / "ml-100k.inter", 9, lambda text: b"\t".join([*text.split(b"\t")[:2], b"five", text.split(b"\t")[3]]))
    with pytest.raises(MovieLensFormatError, match=r"ml-100k\.inter:9: rating 'five' is not a number"):
        load_movielens_100k(recbole)


def test_catalog_text_topic_quality_and_clickbait(tmp_path):
    data = load_movielens_100k(write_recbole(tmp_path / "data"))
    catalog = data.to_catalog(cache=tmp_path / "cache")
    assert catalog.num_items == len(MOVIES) and catalog.embedding_dim == 384
    assert catalog.texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    # Topic = first genre in the GroupLens order: "Get Shorty" (Action, Comedy, Drama) is Action.
    assert catalog.topic_names[catalog.topics[3]] == "Action"
    assert catalog.topic_names[catalog.topics[4]] == "Drama"
    assert np.all(catalog.clickbait == 0)
    # Quality: shrunk mean rating, (r̃ − 1)/4 with 10 pseudo-ratings at the global mean.
    events = fixture_events()
    overall = np.mean([r for *_, r, _ in events])
    ratings = [r for _, i, r, _ in events if i == 1]
    expected = ((sum(ratings) + 10 * overall) / (len(ratings) + 10) - 1) / 4
    assert catalog.quality[0] == pytest.approx(expected, abs=1e-6)
    assert np.all((catalog.quality > 0) & (catalog.quality < 1))
    # The text model separates genres: a movie's latent is closer to its own topic's centroid than average.
    own = np.sum(catalog.latents * catalog.topic_centroids[catalog.topics], axis=1)
    assert own.mean() > (catalog.latents @ catalog.topic_centroids.T).mean() + 0.2
