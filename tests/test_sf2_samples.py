"""SoundFont sample overlap (data/sf2_samples.py) on tiny .sf2 files written here, and its bad-input errors."""
import struct
from pathlib import Path

import numpy as np
import pytest

from latentmix.data.sf2_samples import class_samples, overlap, preset_samples
from latentmix.errors import InputError


def chunk(cid: bytes, data: bytes) -> bytes:
    return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")


def sf2(presets, samples, ifil=(2, 1), kinds=None, global_zone=False) -> bytes:
    """presets: [(bank, program, [sample index, ...])], samples: [int16 arrays]; one instrument per preset, one zone
    per sample (kinds: each sample's sampleType, 1 = mono; global_zone: each instrument starts with a zone of
    other generators and no sample)."""
    pcm, shdr = b"", b""
    for k, s in enumerate(samples):
        start = len(pcm) // 2
        pcm += np.asarray(s, "<i2").tobytes() + b"\0" * 92                       # 46 zero frames after each
        shdr += struct.pack("<20sIIIIIBbHH", f"s{k}".encode(), start, start + len(s), start, start + len(s),
                            22050, 60, 0, 0, (kinds or {}).get(k, 1))
    shdr += struct.pack("<20sIIIIIBbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    phdr = pbag = pgen = inst = ibag = igen = b""
    nb = ng = inb = ing = 0
    for i, (bank, program, ids) in enumerate(presets):
        phdr += struct.pack("<20sHHHIII", f"p{i}".encode(), program, bank, nb, 0, 0, 0)
        pbag += struct.pack("<HH", ng, 0)
        pgen += struct.pack("<HH", 41, i)
        nb, ng = nb + 1, ng + 1
        inst += struct.pack("<20sH", f"i{i}".encode(), inb)
        if global_zone:                                  # pan and attenuation, no sampleID
            ibag += struct.pack("<HH", ing, 0)
            igen += struct.pack("<HH", 17, 100) + struct.pack("<HH", 48, 20)
            inb, ing = inb + 1, ing + 2
        for sid in ids:
            ibag += struct.pack("<HH", ing, 0)
            igen += struct.pack("<HH", 43, 0x7F00) + struct.pack("<HH", 53, sid)    # a key range, then the sample
            inb, ing = inb + 1, ing + 2
    phdr += struct.pack("<20sHHHIII", b"EOP", 0, 0, nb, 0, 0, 0)
    pbag += struct.pack("<HH", ng, 0)
    pgen += struct.pack("<HH", 0, 0)
    inst += struct.pack("<20sH", b"EOI", inb)
    ibag += struct.pack("<HH", ing, 0)
    igen += struct.pack("<HH", 0, 0)
    info = chunk(b"LIST", b"INFO" + chunk(b"ifil", ifil if isinstance(ifil, bytes) else struct.pack("<HH", *ifil)))
    sdta = chunk(b"LIST", b"sdta" + chunk(b"smpl", pcm))
    pdta = chunk(b"LIST", b"pdta" + b"".join(chunk(c, d) for c, d in [
        (b"phdr", phdr), (b"pbag", pbag), (b"pmod", b"\0" * 10), (b"pgen", pgen), (b"inst", inst),
        (b"ibag", ibag), (b"imod", b"\0" * 10), (b"igen", igen), (b"shdr", shdr)]))
    body = b"sfbk" + info + sdta + pdta
    return b"RIFF" + struct.pack("<I", len(body)) + body





def write(tmp_path, name, presets, samples):
    p = tmp_path / name
    p.write_bytes(sf2(presets, samples))
    return p


def test_preset_samples_and_classes(tmp_path):
    a = [[1] * 100, [2] * 300, [3] * 200]
    p = write(tmp_path, "a.sf2", [(0, 33, [0]), (0, 25, [1, 2]), (128, 0, [2]), (128, 8, [0])], a)
    got = preset_samples(p)
    assert {k: sorted(s.frames for s in v) for k, v in got.items()} == {
        (0, 33): [100], (0, 25): [200, 300], (128, 0): [200], (128, 8): [100]}
    cls = class_samples(got)
    assert [len(cls[c]) for c in ("bass", "drums", "guitar", "piano", "other")] == [1, 1, 2, 0, 0]


def test_overlap_counts_bit_identical_samples_only(tmp_path):
    shared, bass_only, near = [9] * 400, [4] * 100, [9] * 399 + [8]
    test = write(tmp_path, "test.sf2", [(0, 33, [0, 1]), (0, 25, [2])], [shared, bass_only, [3] * 100])
    train = write(tmp_path, "train.sf2", [(0, 0, [0]), (0, 26, [1])], [shared, near])
    r = overlap(test, train)
    assert r["bass"] == {"samples": 2, "shared": 1, "frames_share": 0.8}      # 400 of 500 frames
    assert r["guitar"] == {"samples": 1, "shared": 0, "frames_share": 0.0}    # a one-value edit is not shared
    assert r["piano"] == {"samples": 0, "shared": 0, "frames_share": 0.0}
    both = overlap(test, [train, write(tmp_path, "t2.sf2", [(0, 1, [0])], [bass_only])])
    assert both["bass"]["shared"] == 2


def test_global_zones_multi_zone_presets_and_empty_or_rom_samples(tmp_path):
    p = tmp_path / "g.sf2"
    p.write_bytes(sf2([(0, 33, [0, 1, 2, 3])], [[1] * 100, [2] * 50, [], [3] * 70], kinds={3: 0x8001},
                      global_zone=True))
    assert sorted(s.frames for s in preset_samples(p)[(0, 33)]) == [50, 100]    # the empty and the ROM one left out
    q = tmp_path / "empty.sf2"
    q.write_bytes(sf2([(0, 34, [0])], [[]]))
    assert overlap(p, q)["bass"]["shared"] == 0                                   # two empty samples are not a match


@pytest.mark.parametrize("content, why", [
    (None, "no such SoundFont file"),
    (b"", "not a SoundFont 2 file"),
    (b"RIFF\x04\x00\x00\x00WAVE", "not a SoundFont 2 file"),
    ("truncated", "truncated SoundFont"),
    ("sf3", "SF3"),
    ("ifil", "ifil chunk of 1 bytes"),
    ("compressed", "compressed"),
])
def test_bad_files_name_the_file(tmp_path, content, why):
    p = tmp_path / "bad.sf2"
    good = sf2([(0, 0, [0])], [[1] * 10])
    if content == "truncated":
        content = good[:-20]
    elif content == "sf3":
        content = sf2([(0, 0, [0])], [[1] * 10], ifil=(3, 1))
    elif content == "ifil":
        content = sf2([(0, 0, [0])], [[1] * 10], ifil=b"\x02")
    elif content == "compressed":
        content = sf2([(0, 0, [0])], [[1] * 10], kinds={0: 0x11})
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=f"bad.sf2: .*{why}"):
        preset_samples(p)


def test_benchmark_table_and_one_line_error(tmp_path, capsys):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "soundfont_overlap.py"
    spec = importlib.util.spec_from_file_location("bench_sf_overlap", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    test = write(tmp_path, "test.sf2", [(0, 33, [0]), (128, 0, [1])], [[9] * 400, [3] * 100])
    train = write(tmp_path, "train.sf2", [(0, 0, [0])], [[9] * 400])
    other = write(tmp_path, "other.sf2", [(0, 0, [0])], [[1] * 40])
    assert bench.run(["--test", f"T={test}", "--train", f"A={train}", "--train", f"B={other}"]) == 0
    out = capsys.readouterr().out
    assert "| T | A | 1/1 (100 %) | 0/1 (0 %) | - | - | - |" in out
    assert "| T | B | 0/1 (0 %) | 0/1 (0 %) | - | - | - |" in out
    assert "| T | all of them | 1/1 (100 %) | 0/1 (0 %) | - | - | - |" in out
    assert bench.run_main(bench.run, ["--test", f"T={tmp_path / 'no.sf2'}", "--train", f"A={train}"]) == 2
    assert "no.sf2: no such SoundFont file" in capsys.readouterr().err


def test_cli_sf2_overlap(tmp_path, capsys):
    from latentmix import cli
    test = write(tmp_path, "test.sf2", [(0, 33, [0]), (0, 25, [1])], [[9] * 400, [3] * 100])
    train = write(tmp_path, "train.sf2", [(0, 0, [0])], [[9] * 400])
    clean = write(tmp_path, "clean.sf2", [(0, 0, [0])], [[1] * 40])
    assert cli.main(["data", "sf2-overlap", "--test", str(test), "--train", str(train)]) == 0
    out = capsys.readouterr().out
    assert "bass    1 of 1 (100 % of its sample frames)" in out and "guitar  0 of 1 (0 %" in out
    assert "piano   0 of 0\n" in out
    assert cli.main(["data", "sf2-overlap", "--test", str(test), "--train", str(train), "--strict"]) == 1
    assert cli.main(["data", "sf2-overlap", "--test", str(test), "--train", str(clean), "--strict"]) == 0
    capsys.readouterr()
    assert cli.main(["data", "sf2-overlap", "--test", str(tmp_path / "gone.sf2"), "--train", str(train)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gone.sf2: no such SoundFont file" in err[0]


GM_BANK = Path("/usr/share/sounds/sf2/sf_GMbank.sf2")
OPL3 = Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")


@pytest.mark.skipif(not (GM_BANK.is_file() and OPL3.is_file()),
                    reason="Debian's csound-soundfont and opl3-soundfont are not installed")
def test_benchmark_spectra_find_a_copy(capsys):
    """--spectra: a font against itself correlates 1.00 in every class; the OPL3 FM bank against it less."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "soundfont_overlap.py"
    spec = importlib.util.spec_from_file_location("bench_sf_overlap2", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.run(["--test", f"G={GM_BANK}", "--train", f"G={GM_BANK}", "--train", f"O={OPL3}", "--spectra"]) == 0
    spectra = capsys.readouterr().out.split("Note spectra")[1]          # the second table
    rows = {ln.split(" | ")[1]: ln for ln in spectra.splitlines() if ln.startswith("| G | ")}
    assert rows["G"].count("1.00 / 1.00") == 3
    assert "1.00 / 1.00" not in rows["O"]
