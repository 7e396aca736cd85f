"""Record a merged view's manifest, or compare a merged view with one recorded.

    python3 manifest.py record DIR FILE
    python3 manifest.py compare FILE DIR [--no-dir-mtimes]

``compare`` prints ``same``, or the differences (tests/integration/upper_manifest.py
does the work). Directory mtimes are compared unless ``--no-dir-mtimes``.
"""
import os
import pickle
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
from upper_manifest import compare, manifest  # noqa: E402  pylint: disable=wrong-import-position


def main(argv):
    if argv[1] == "record":
        with open(argv[3], "wb") as handle:
            pickle.dump(manifest(argv[2]), handle)
        return 0
    with open(argv[2], "rb") as handle:
        recorded = pickle.load(handle)
    found = compare(recorded, manifest(argv[3]), dir_mtimes="--no-dir-mtimes" not in argv, names=("recorded", "now"))
    print("\n".join(found) if found else "same")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
