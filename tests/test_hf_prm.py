"""The in-process PRM adapters against hand computations on tiny random models.

Each format gets a 2-layer Llama with random weights and the embedded SmolLM2
tokenizer (plus the tokens a format needs); the expected step scores are worked
out here from the model's own forward pass, independently of the adapter.
"""

import copy
import functools
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from testtime.verifiers import Aggregation, Solution, Verifier, aggregate  # noqa: E402
from testtime.verifiers.hf_prm import PRM_FORMATS, HFProcessRewardModel, PRMFormat, PRMKind  # noqa: E402

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have?"
SOLUTIONS = [
    Solution(QUESTION, "He starts with 3 apples.\n\nHe buys 5 more, so 3 + 5 = 8.\n\nThe answer is: 8"),
    Solution(QUESTION, "3 - 5 = -2\n\nThe answer is: -2"),
    Solution("What is 2 * 6?", "2 * 6 = 12, the answer is 12"),
    Solution(QUESTION, "Start: 3.\n\nAdd 5.\n\nThat makes 8!\n\nCheck: 8 - 5 = 3.\n\nThe answer is: 8"),
    Solution(QUESTION, "3 + 5 = 8\nThe answer is: 8", step_delimiter="\n"),  # steps by its own delimiter
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matmuls run far faster on one thread than contending for busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_tokenizer():
    from transformers import AutoTokenizer

    from conftest import TEST_MODEL
    from testtime.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(TEST_MODEL))


@pytest.fixture(scope="module")
def tokenizer(base_tokenizer):
    tok = copy.deepcopy(base_tokenizer)
    tok.add_tokens([t for t in ("ки", "<extra_0>") if len(tok.encode(t, add_special_tokens=False)) != 1])
    return tok


def _tiny(tokenizer, classify: bool):
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForTokenClassification

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=len(tokenizer), initializer_range=0.3, pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
    )
    model = LlamaForTokenClassification(config) if classify else LlamaForCausalLM(config)
    return model.eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer):
    """One folder per preset: a tiny random model and the tokenizer it needs."""
    out = {}
    for preset, classify in (("math_shepherd", False), ("qwen25_math_prm", True), ("rlhflow", False)):
        folder = tmp_path_factory.mktemp(preset)
        _tiny(tokenizer, classify).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        out[preset] = str(folder)
    return out


@pytest.fixture(scope="module")
def verifiers(folders):
    """One adapter per preset (loading a tokenizer takes seconds); tests vary copies of them."""
    return {preset: HFProcessRewardModel(folder, format=preset, device="cpu") for preset, folder in folders.items()}


def _variant(verifier, **changes):
    """A shallow copy sharing the loaded model and tokenizer, with some settings changed."""
    out = copy.copy(verifier)
    for key, value in changes.items():
        setattr(out, key, value)
    return out


# ----- the hand computations -----


@functools.cache
def _load(folder, classify):
    from transformers import LlamaForCausalLM, LlamaForTokenClassification

    return (LlamaForTokenClassification if classify else LlamaForCausalLM).from_pretrained(folder).eval()


def _plus_minus(tokenizer):
    return tokenizer.convert_tokens_to_ids("+"), tokenizer.convert_tokens_to_ids("-")


def expected_math_shepherd(tokenizer, folder, sol):
    text = sol.question + " " + "\n".join(f"{step} ки" for step in sol.steps)
    ids = tokenizer(text)["input_ids"]
    tag = tokenizer.convert_tokens_to_ids("ки")
    positions = [i for i, t in enumerate(ids) if t == tag]
    with torch.no_grad():
        logits = _load(folder, False)(torch.tensor([ids])).logits[0]
    plus, minus = _plus_minus(tokenizer)
    scores = [torch.softmax(logits[p, [plus, minus]], dim=-1)[0].item() for p in positions]
    return scores, len(ids)


def expected_qwen(tokenizer, folder, sol):
    messages = [
        {"role": "system", "content": QWEN_SYSTEM},
        {"role": "user", "content": sol.question},
        {"role": "assistant", "content": "<extra_0>".join(sol.steps) + "<extra_0>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    sep = tokenizer.convert_tokens_to_ids("<extra_0>")
    positions = [i for i, t in enumerate(ids) if t == sep]
    with torch.no_grad():
        logits = _load(folder, True)(torch.tensor([ids])).logits[0]
    scores = [torch.softmax(logits[p], dim=-1)[1].item() for p in positions]
    return scores, len(ids)


def expected_rlhflow(tokenizer, folder, sol):
    conversation = []
    for i, step in enumerate(sol.steps):
        conversation.append({"role": "user", "content": f"{sol.question} {step}" if i == 0 else step})
        conversation.append({"role": "assistant", "content": "+"})
    text = tokenizer.apply_chat_template(conversation, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    plus, minus = _plus_minus(tokenizer)
    end, newline = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("Ċ")
    assistant = tokenizer.encode("assistant", add_special_tokens=False)[-1]
    # An assistant "+" is "assistant", "\n", "+", "<|im_end|>"; the position before it predicts it.
    labels = [
        j for j in range(2, len(ids) - 1)
        if ids[j] == plus and ids[j + 1] == end and ids[j - 1] == newline and ids[j - 2] == assistant
    ]
    with torch.no_grad():
        logits = _load(folder, False)(torch.tensor([ids])).logits[0]
    scores = [torch.softmax(logits[j - 1, [plus, minus]], dim=-1)[0].item() for j in labels]
    return scores, len(ids)


EXPECTED = {"math_shepherd": expected_math_shepherd, "qwen25_math_prm": expected_qwen, "rlhflow": expected_rlhflow}


@pytest.fixture(scope="module")
def expected(tokenizer, folders):
    """Hand-computed (step scores, token count) per preset, one per solution."""
    return {p: [EXPECTED[p](tokenizer, folders[p], sol) for sol in SOLUTIONS] for p in EXPECTED}


@pytest.mark.parametrize("preset", list(EXPECTED))
def test_step_scores_match_a_hand_computation(preset, verifiers, expected):
    got = _variant(verifiers[preset], batch_size=1).score_steps(SOLUTIONS)
    assert [len(s.scores) for s in got] == [3, 2, 1, 5, 2]
    for sol, scores, (want, n_tokens) in zip(SOLUTIONS, got, expected[preset]):
        assert len(scores.scores) == len(want) == len(sol.steps)
        assert scores.scores == pytest.approx(want, abs=1e-5)
        assert scores.tokens == n_tokens
    # A random model still tells positions apart, so the check above means something.
    assert len({round(s, 4) for s in got[0].scores}) > 1


@pytest.mark.parametrize("preset", list(EXPECTED))
def test_batched_scores_equal_one_at_a_time(preset, verifiers):
    one = [_variant(verifiers[preset], batch_size=1).score_steps([sol])[0] for sol in SOLUTIONS]
    for batch_size in (2, 8):  # solutions of different lengths share padded batches
        together = _variant(verifiers[preset], batch_size=batch_size).score_steps(SOLUTIONS)
        assert [s.tokens for s in together] == [s.tokens for s in one]
        for a, b in zip(one, together):
            assert b.scores == pytest.approx(a.scores, abs=1e-5)


@pytest.mark.parametrize("how", ["product", "min", "last"])
def test_aggregation_through_score(how, verifiers):
    v = _variant(verifiers["rlhflow"], aggregation=Aggregation(how))
    steps = v.score_steps(SOLUTIONS)
    assert v.score(SOLUTIONS) == pytest.approx([aggregate(s.scores, Aggregation(how)) for s in steps])


def test_registered_by_name_with_aggregation_and_parameter_count(folders, verifiers):
    v = Verifier.create("hf_prm", model=folders["math_shepherd"], format="math_shepherd", aggregation="min",
                           device="cpu")
    assert isinstance(v, HFProcessRewardModel) and v.aggregation is Aggregation.MIN
    plain = verifiers["math_shepherd"].score_steps(SOLUTIONS)
    assert v.score(SOLUTIONS) == pytest.approx([min(s.scores) for s in plain])
    assert v.parameter_count == sum(p.numel() for p in _load(folders["math_shepherd"], False).parameters())
    assert v.score_steps([]) == []


def test_format_from_a_json_file_drives_the_adapter(tmp_path, folders, verifiers):
    # The math-shepherd layout with the labels swapped: every step score becomes 1 - P(+).
    path = tmp_path / "swapped.json"
    path.write_text(json.dumps({"kind": "step_tag", "step_tag": "ки", "good_token": "-", "bad_token": "+"}))
    swapped = HFProcessRewardModel(folders["math_shepherd"], format=str(path), device="cpu").score_steps(SOLUTIONS)
    plain = verifiers["math_shepherd"].score_steps(SOLUTIONS)
    for a, b in zip(plain, swapped):
        assert b.scores == pytest.approx([1 - s for s in a.scores], abs=1e-5)


@pytest.mark.parametrize("preset", list(PRM_FORMATS))
def test_format_json_round_trip(preset, tmp_path):
    path = tmp_path / f"{preset}.json"
    PRM_FORMATS[preset].to_json(path)
    back = PRMFormat.from_json(path)
    assert back == PRM_FORMATS[preset]
    assert isinstance(back.kind, PRMKind)
    assert PRMFormat.resolve(str(path)) == PRM_FORMATS[preset]


def test_format_json_with_unknown_fields_or_kind(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"kind": "step_tag", "tag": "ки"}))
    with pytest.raises(ValueError, match="unknown PRMFormat fields \\['tag'\\].*step_tag"):
        PRMFormat.from_json(path)
    path.write_text(json.dumps({"kind": "regression"}))
    with pytest.raises(ValueError, match="unknown PRM kind 'regression'.*chat_turn"):
        PRMFormat.from_json(path)


def test_unknown_preset_lists_the_known_ones(folders):
    known = "known presets: math_shepherd, qwen25_math_prm, rlhflow"
    with pytest.raises(ValueError, match=f"unknown PRM format 'nope'; {known}"):
        HFProcessRewardModel(folders["rlhflow"], format="nope", device="cpu")


@pytest.mark.parametrize(
    "preset, role, token", [("math_shepherd", "step tag", "ки"), ("qwen25_math_prm", "separator", "<extra_0>")]
)
def test_a_format_token_that_is_not_one_token_is_refused(preset, role, token, base_tokenizer):
    # SmolLM2 as it ships has neither "ки" nor "<extra_0>" as a token.
    with pytest.raises(ValueError, match=f"{role} {token!r} is not a single token in the tokenizer of 'smollm2'"):
        PRM_FORMATS[preset].token_ids(base_tokenizer, "smollm2")
    assert PRM_FORMATS["rlhflow"].token_ids(base_tokenizer, "smollm2") == {
        "good token": base_tokenizer.convert_tokens_to_ids("+"), "bad token": base_tokenizer.convert_tokens_to_ids("-")
    }


def test_the_adapter_refuses_a_model_without_the_format_tokens(base_tokenizer, tmp_path):
    folder = tmp_path / "plain-tokenizer"
    base_tokenizer.save_pretrained(folder)  # no weights needed: the check comes before loading them
    with pytest.raises(ValueError, match=f"separator '<extra_0>' is not a single token in the tokenizer of '{folder}'"):
        HFProcessRewardModel(str(folder), format="qwen25_math_prm", device="cpu")


def test_a_tag_the_tokenizer_merges_in_context_is_refused(verifiers):
    # "!" is one token alone, but "8!" + "!" tokenizes as "!!" and leaves no tag token of its own.
    fmt = PRMFormat(PRMKind.STEP_TAG, step_tag="!", tag_prefix="")
    v = _variant(verifiers["math_shepherd"], format=fmt)
    v.token_ids = fmt.token_ids(v.tokenizer, "tiny")
    with pytest.raises(ValueError, match="solution 1: the step tag '!' is not a token of its own"):
        v.score_steps([SOLUTIONS[2], SOLUTIONS[3]])


def test_too_long_input_names_the_solution(verifiers, expected):
    short = expected["math_shepherd"][2][1]
    v = _variant(verifiers["math_shepherd"], max_length=short)
    assert len(v.score_steps([SOLUTIONS[2]])[0].scores) == 1
    with pytest.raises(ValueError, match=f"solution 1 is \\d+ tokens long .*over max_length={short}"):
        v.score_steps([SOLUTIONS[2], SOLUTIONS[0]])


def test_remote_code_token_classifier_uses_its_first_output(tmp_path, folders, expected, monkeypatch):
    """A config whose auto_map names an AutoModel (Qwen's PRM) loads through AutoModel with remote code."""
    import shutil

    folder = tmp_path / "remote"
    shutil.copytree(folders["qwen25_math_prm"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_prm.TinyPRM"}
    (folder / "config.json").write_text(json.dumps(config))
    inner = _load(folders["qwen25_math_prm"], True)
    calls = []

    class Remote(torch.nn.Module):  # returns a plain tuple, as remote reward heads may
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask=None):
            return (self.inner(input_ids=input_ids, attention_mask=attention_mask).logits,)

    def fake_from_pretrained(path, **kw):
        calls.append((path, kw))
        return Remote()

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", fake_from_pretrained)
    v = HFProcessRewardModel(str(folder), format="qwen25_math_prm", device="cpu")
    assert calls and calls[0][1]["trust_remote_code"] is True
    for scores, (want, _) in zip(v.score_steps(SOLUTIONS), expected["qwen25_math_prm"]):
        assert scores.scores == pytest.approx(want, abs=1e-5)
