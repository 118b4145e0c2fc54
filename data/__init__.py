"""The registry's data: the small real reference data (data/reference) and the generator of the
synthetic city (data/generate)."""
from pathlib import Path

# The folder of the real reference data (division names and codes, county polygons, the heritage
# catalogue, the adjustments): read by loaders/reference.py, the generator and the heritage CLI.
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
