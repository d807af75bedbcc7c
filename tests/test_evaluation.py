"""latentmix.evaluation: the records round-trip through JSON, and the shared loops give the numbers the loops they
replaced gave (written out here the way benchmarks/separation.py, benchmarks/codec.py and peers.py wrote them)."""
import json

import pytest
import torch

from latentmix import SAMPLE_RATE
from latentmix.errors import ConfigError
from latentmix.evaluation import (Candidate, CodecCeiling, CodecEvaluation, SeparationEvaluation, TrackRecord,
                                  WindowRecord, evaluate_codec, evaluate_separation, load_items, oracle)
from latentmix.evaluation.codec import evaluate_opus, match_opus, opus_available, opus_kbps_request
from latentmix.evaluation.records import same
from latentmix.metrics.protocols import get_protocol


@pytest.fixture(scope="module")
def tiny_codec():
    from latentmix.codec.model import Codec
    torch.manual_seed(0)
    return Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1, 3],
                 quantizer={"type": "rvq", "num_codebooks": 3, "codebook_size": 16}).eval()


def _json_roundtrip(record, cls):
    text = json.dumps(record.to_json())
    back = cls.from_json(json.loads(text))
    assert same(back.to_json(), record.to_json())
    return back


# ------------------------------------------------------------------ separation
def _old_loop(method, tracks, protocol, whole=False):
    """The separate-and-score loop as benchmarks/separation.py (and `latentmix eval msdm`) wrote it."""
    from latentmix.data.datasets import load_track
    from latentmix.separation.apply import separate_long
    records, per_track = [], {}
    for t in tracks:
        refs = load_track(t, SAMPLE_RATE, stems=protocol.stems)
        mix = protocol.make_mixture(refs).float()
        if whole:
            est = method.separate(mix[None, None], refs[None])[0]
        else:
            est = separate_long(method, mix[None, None], refs[None], None, 0.25, SAMPLE_RATE, 4)[0]
        recs = protocol.evaluate_track(refs, est.float().cpu(), mix)
        per_track[t.name] = protocol.aggregate(recs)
        records.extend(recs)
    return protocol.aggregate(records), per_track, records


def test_oracle_gives_the_old_irm_numbers(tiny_dataset):
    from latentmix.data.datasets import list_tracks
    from latentmix.separation.registry import get_method
    P = get_protocol("msdm")
    tracks = list_tracks(tiny_dataset, "train")[:2]
    want, want_tracks, want_recs = _old_loop(get_method("oracle-irm"), tracks, P)
    ev = evaluate_separation([oracle("msdm", name="IRM")], tiny_dataset, "train", "msdm", max_tracks=2,
                             warmup_seconds=0.5)
    res = ev.results["IRM"]
    assert res.summary == want                                   # exactly: the same computation
    assert res.per_track == want_tracks
    assert [w.as_protocol() for t in res.tracks for w in t.windows] == want_recs
    assert res.summary["All"] > 5 and res.summary["windows"] == len(want_recs) > 0
    assert ev.tracks == [t.name for t in tracks] and ev.audio_seconds == pytest.approx(2 * 4.0, abs=0.01)
    assert res.kind == "oracle" and res.params is None and res.compute_s > 0
    assert res.detail == "method `oracle-irm` (n_fft 2048, hop 512, power 2)"
    row = res.row()
    assert row["All"] == want["All"] and row["per_track"] == want_tracks and row["xrt"] > 0


def test_whole_track_oracle_matches_direct_calls(tiny_dataset):
    """irm-resolution's path: the IRM on the whole track in one call (no segments), at other STFT sizes."""
    from latentmix.data.datasets import list_tracks
    from latentmix.separation.registry import get_method
    P = get_protocol("msdm")
    tracks = list_tracks(tiny_dataset, "train")[:2]
    want, _, _ = _old_loop(get_method("oracle-irm", n_fft=512, hop=128), tracks, P, whole=True)
    ev = evaluate_separation([oracle(P, name="512", whole=True, n_fft=512, hop=128)], tracks=tracks)
    assert ev.results["512"].summary == want


def test_separation_records_roundtrip_json(tiny_dataset):
    ev = evaluate_separation([oracle()], tiny_dataset, "test")
    back = _json_roundtrip(ev, SeparationEvaluation)
    r = back.results["oracle-irm"]
    assert isinstance(r.tracks[0], TrackRecord) and isinstance(r.tracks[0].windows[0], WindowRecord)
    assert r.tracks[0].windows[0].silent is not None and r.summary == ev.results["oracle-irm"].summary
    assert back.table() == ev.table()


def test_separator_candidate_and_estimates_callback(tiny_dataset, tmp_path):
    """A model separator runs like `latentmix separate`; on_estimate sees each estimate (the demo writes them)."""
    from latentmix.data.datasets import list_tracks
    from latentmix.separation.models import build_separator
    from latentmix.separation.registry import get_method
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    build_separator({"arch": "spec", "channels": 8, "hidden": 8, "layers": 1, "segment_seconds": 1.5}).save(path)
    method = get_method("supervised", model=str(path))
    tracks = list_tracks(tiny_dataset, "test")
    want, _, _ = _old_loop(method, tracks, get_protocol("msdm"))
    seen = []
    ev = evaluate_separation([Candidate(method, "tiny", path=path)], tiny_dataset, "test",
                             on_estimate=lambda name, track, est: seen.append((name, track.name, tuple(est.shape))))
    r = ev.results["tiny"]
    assert r.summary == want and r.params > 0
    assert r.detail == f"`{path}` (arch spec, segment 1.5 s, overlap 0.25, 4 segments per call)"
    assert seen == [("tiny", tracks[0].name, (4, r.tracks[0].samples))]


class _Spy:
    """A 5-stem method whose estimates are 0.7 x the true stems (`truth`) + 0.06 x the mixture it is given (which
    it records)."""
    name, stems, needs_references, segment_seconds = "spy", ("bass", "drums", "guitar", "piano", "other"), False, 60.0

    def __init__(self, truth):
        self.truth, self.seen = truth, []

    def separate(self, mix, refs=None):
        self.seen.append(mix.clone())
        return 0.7 * self.truth[:, :, :mix.shape[-1]] + 0.06 * mix


def test_msdm_mixture_includes_other_but_scores_the_four(tmp_path):
    """msdm on a track with other.wav: the method hears the five-stem mix.wav, a 5-stem method's other output is
    not scored; score_folders, given the same estimates, agrees."""
    import numpy as np
    import soundfile as sf
    from latentmix.data.build import synth_dataset
    from latentmix.data.datasets import list_tracks, load_track
    from latentmix.metrics.protocols import score_folders
    root = synth_dataset(tmp_path / "d", tracks=1, seconds=6.0, seed=2, other_prob=1.0, splits=(0, 0, 1),
                         progress=False)
    track = list_tracks(root, "test")[0]
    five = load_track(track, stems=_Spy.stems)
    assert five[4].abs().max() > 1e-2
    spy = _Spy(five[None])
    P = get_protocol("msdm")
    ev = evaluate_separation([Candidate(spy, whole=True)], root, "test", P)
    mix = torch.from_numpy(sf.read(track / "mix.wav", dtype="float32")[0])
    assert torch.allclose(spy.seen[0][0, 0], mix, atol=1e-6)                  # other is in what it hears
    assert ev.stems == ["bass", "drums", "guitar", "piano"] and "other" not in ev.results["spy"].summary
    guess = 0.7 * five[:4] + 0.06 * mix
    want = P.aggregate(P.evaluate_track(five[:4], guess, mix))
    assert ev.results["spy"].summary == pytest.approx(want, rel=1e-6)
    four = P.aggregate(P.evaluate_track(five[:4], guess, five[:4].sum(0)))
    assert abs(four["All"] - want["All"]) > 0.1                               # the mixture matters
    est = tmp_path / "est" / track.name
    est.mkdir(parents=True)
    for k, s in enumerate(_Spy.stems[:4]):
        sf.write(est / f"{s}.wav", guess[k].numpy().astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    assert score_folders(track.parent, tmp_path / "est", "msdm")["results"] == pytest.approx(want, rel=1e-6)


def test_lass_protocol_oracle_and_stem_selection(tiny_dataset, tmp_path):
    """lass: mixture 0.5 (bass + drums); the oracle is built for its two stems, a 4-stem separator's bass and drums
    are picked by name; the through-codec ceiling runs under it too (an argument, not a new loop)."""
    from latentmix.codec.model import Codec
    from latentmix.separation.models import build_separator
    from latentmix.separation.registry import get_method
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    build_separator({"arch": "spec", "channels": 8, "hidden": 8, "layers": 1, "segment_seconds": 1.5}).save(path)
    codec = Codec(base_channels=4, strides=[2, 4], latent_dim=8, dilations=[1, 3],
                  quantizer={"type": "rvq", "num_codebooks": 2, "codebook_size": 16}).eval()
    P = get_protocol("lass")
    ev = evaluate_separation([oracle(P), Candidate(get_method("supervised", model=str(path)), "tiny"),
                              CodecCeiling(codec, stems=P.stems, path="tiny-codec", num_codebooks=1)],
                             tiny_dataset, "train", P, max_tracks=2)
    assert ev.protocol == "lass" and ev.stems == ["bass", "drums"]
    for r in ev.results.values():
        assert set(r.summary) == {"bass", "drums", "All", "windows"} and r.summary["windows"] >= 1
    assert ev.results["codec ceiling"].detail.startswith("`tiny-codec` (1 codebooks x 16")
    with pytest.raises(ConfigError, match="gives stems"):
        evaluate_separation([get_method("oracle-irm")], tiny_dataset, "train", P)   # 4 reference stems, lass has 2


def test_codec_ceiling_matches_the_old_codec_row(tiny_dataset, tiny_codec):
    from latentmix.data.datasets import list_tracks, load_track
    P = get_protocol("msdm")
    tracks = list_tracks(tiny_dataset, "test")
    recs = []
    for t in tracks:                                   # benchmarks/separation.py's CodecRow, as it was
        refs = load_track(t, SAMPLE_RATE, stems=P.stems)
        with torch.inference_mode():
            y = tiny_codec.decode_chunked(tiny_codec.encode_chunked(refs[:, None]))[:, 0, :refs.shape[-1]]
        recs += P.evaluate_track(refs, y, P.make_mixture(refs).float())
    ev = evaluate_separation([CodecCeiling(tiny_codec, path="c.safetensors")], tracks=tracks)
    assert ev.results["codec ceiling"].summary == P.aggregate(recs)
    assert ev.results["codec ceiling"].detail == \
        "`c.safetensors` (3 codebooks x 16, 33.08 kbps, per stem encode + decode)"


def test_separation_bad_input(tiny_dataset):
    with pytest.raises(ConfigError, match="two candidates"):
        evaluate_separation([oracle(), oracle()], tiny_dataset, "test")
    with pytest.raises(ConfigError, match="needs `data`"):
        evaluate_separation([oracle()])


# ------------------------------------------------------------------ codec
def _old_codec_means(model, items):
    """benchmarks/codec.py's evaluate_codec, as it was: per item every level, metrics batched over the levels."""
    from latentmix.metrics.codec import mel_distance, multi_resolution_stft_distance
    from latentmix.metrics.sisdr import si_sdr
    N = model.num_codebooks
    sums = {n: {"sisdr": [], "mel": [], "mrstft": []} for n in range(1, N + 1)}
    with torch.inference_mode():
        for _, x in items:
            T = x.shape[-1]
            x3 = x.reshape(1, 1, T)
            y = torch.cat([model.decode(model.encode(x3, n))[..., :T] for n in range(1, N + 1)])
            ref = x3.expand_as(y)
            q = {"sisdr": si_sdr(y, ref, zero_mean=True).reshape(-1), "mel": mel_distance(y, ref, reduction="none"),
                 "mrstft": multi_resolution_stft_distance(y, ref, reduction="none")}
            for k, v in q.items():
                for n in range(1, N + 1):
                    sums[n][k].append(float(v[n - 1]))
    return {n: {k: sum(v) / len(v) for k, v in d.items()} for n, d in sums.items()}


def test_codec_evaluation_gives_the_old_numbers(tiny_dataset, tiny_codec):
    from latentmix.data.datasets import list_tracks
    items = load_items(tiny_dataset, "train", seconds=1.0, max_tracks=2)
    assert [n for n, _ in items] == [t.name for t in list_tracks(tiny_dataset, "train")[:2]]
    assert items[0][1].shape == (SAMPLE_RATE,)
    want = _old_codec_means(tiny_codec, items)
    ev = evaluate_codec(tiny_codec, items, code_usage_stats=True)
    assert ev.levels == [1, 2, 3] and len(ev.records) == 2 * 3
    for n, s in ev.codec_summaries().items():
        assert s.kbps == pytest.approx(tiny_codec.bitrate(n) / 1000)
        assert s.metrics["si_sdr"] == pytest.approx(want[n]["sisdr"], rel=1e-9)
        assert s.metrics["mel_distance"] == pytest.approx(want[n]["mel"], rel=1e-9)
        assert s.metrics["mrstft_distance"] == pytest.approx(want[n]["mrstft"], rel=1e-9)
        assert s.metrics["log_mel_distance"] > 0 and 0 < s.bandwidth_khz <= SAMPLE_RATE / 2000
        assert s.items == 2 and len(s.lags) == 2 and s.seconds > 0 and s.file_kbps is None
    assert [u.level for u in ev.usage] == [0, 1, 2] and ev.usage_frames == 2 * -(-SAMPLE_RATE // 8)
    assert ev.codec().level == 3 and ev.opus_summaries() == [] and ev.opus_skipped is None


def test_codec_records_roundtrip_and_file_bitrate(tiny_dataset, tiny_codec):
    from latentmix.codec.codefile import code_bits
    from latentmix.data.datasets import list_tracks
    items = load_items(tiny_dataset, "test", seconds=0.5, source="stems")
    track = list_tracks(tiny_dataset, "test")[0].name
    assert [n for n, _ in items] == [f"{track}/{s}" for s in ("bass", "drums", "guitar", "piano")]
    decoded = []
    ev = evaluate_codec(tiny_codec, items, levels=[1, 3], file_bitrate=True, chunk_frames=256, warmup=True,
                        metrics=("si_sdr", "log_mel_distance"),
                        on_decoded=lambda i, n, y: decoded.append((i, n, y.shape)))
    assert len(decoded) == 8 and decoded[0] == (f"{track}/bass", 1, (1, items[0][1].shape[-1]))
    for r in ev.records:
        T = r.samples
        payload_kbps = -(-r.level * -(-T // 8) * code_bits(16) // 8) * 8 / (T / SAMPLE_RATE) / 1000
        assert r.file_kbps > payload_kbps > 0.9 * r.kbps            # codes + header + CRC
        assert set(r.metrics) == {"si_sdr", "log_mel_distance"}
    back = _json_roundtrip(ev, CodecEvaluation)
    assert back.codec(3).file_kbps == pytest.approx(ev.codec(3).file_kbps)
    with pytest.raises(ConfigError, match="levels must be in 1..3"):
        evaluate_codec(tiny_codec, items, levels=[4])
    with pytest.raises(ConfigError, match="unknown codec metric"):
        evaluate_codec(tiny_codec, items, metrics=("bogus",))
    with pytest.raises(ConfigError, match="needs file_bitrate"):
        evaluate_codec(tiny_codec, items, opus_match="file")


@pytest.mark.skipif(not opus_available(), reason="opusenc/opusdec not installed (Debian opus-tools)")
def test_opus_rows_at_fixed_and_matched_rates(tiny_dataset, tiny_codec):
    items = load_items(tiny_dataset, "test", seconds=1.0)
    ev = evaluate_codec(tiny_codec, items, levels=[1], metrics=("si_sdr", "mel_distance"), opus_kbps=(8.0,),
                        opus_match="nominal")
    want = sorted({8.0, round(opus_kbps_request(tiny_codec.bitrate(1)), 3)})
    opus = ev.opus_summaries()
    assert [o.request_kbps for o in opus] == want and ev.opus.startswith("opusenc")
    assert opus[0].kbps == pytest.approx(8.0, rel=0.02) and abs(opus[0].lag) < 8 and opus[0].si_sdr_raw is not None
    assert match_opus(tiny_codec.bitrate(1) / 1000, opus) is opus[1]
    _, alone = evaluate_opus(items, [8.0], metrics=("si_sdr", "mel_distance"))
    assert same(alone[0].metrics, opus[0].metrics)                # the same code path, not a copy
    back = _json_roundtrip(ev, CodecEvaluation)
    assert [o.request_kbps for o in back.opus_summaries()] == want
