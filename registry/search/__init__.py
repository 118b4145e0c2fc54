"""Fuzzy address and place-name search over an in-memory gazetteer derived from PostGIS.

The steps, one module each:
  query.py    normalize the query, find its number components, cut the rest into units
  parse.py    find the gazetteer's names in it (characters, sounds, initials, edits)
  resolve.py  resolve number / group / building / unit / room within a street, compound or village
  rank.py     score with components, order, mark ambiguous and low-confidence results, explain
  engine.py   the steps in order, filters, structured search, batch form
Around them: gazetteer.py + names.py (the data), loading.py (from PostGIS, with
entity_loading.py and address_loading.py), generation.py (the
gazetteer's files, shared by every process), freshness.py (LISTEN/NOTIFY and incremental updates), autocomplete.py, reverse.py (PostGIS KNN and
point-in-polygon), batch.py (CSV / JSON lines), validate.py (input checks).
"""
from registry.search.autocomplete import autocomplete
from registry.search.batch import match_rows, parse_body, stream
from registry.search.engine import Filters, match_one, search, structured, structured_query
from registry.search.freshness import SearchService, StaticSource, apply_changes
from registry.search.gazetteer import Gazetteer
from registry.search.loading import load_gazetteer
from registry.search.rank import LOW_CONFIDENCE
from registry.search.reverse import reverse

__all__ = [
    "Filters", "Gazetteer", "LOW_CONFIDENCE", "SearchService", "StaticSource", "apply_changes", "autocomplete", "load_gazetteer",
    "match_one", "match_rows", "parse_body", "reverse", "search", "stream", "structured", "structured_query",
]
