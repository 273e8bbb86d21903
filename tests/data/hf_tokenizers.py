"""Real Hugging Face tokenizers built here (nothing from a hub): a byte-level BPE trained on a few
sentences, wrapped in ``PreTrainedTokenizerFast`` with BOS/EOS/padding and a ChatML-like chat template,
saved with ``save_pretrained``. Test modules import the fixtures (a ``conftest.py`` here would shadow the
top-level one that ``from conftest import ...`` reads)."""

import random
from pathlib import Path

import pytest

SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "what did the cat do", "it sat on the mat",
             "where did the dog run", "it ran in the park"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def save_tokenizer(directory: Path, *, bos: str | None = "<s>", pad: str | None = "<pad>",
                   eos: str = "<|im_end|>", chat_template: str | None = CHAT_TEMPLATE,
                   extra_specials: tuple[str, ...] = ()) -> Path:
    """A byte-level BPE tokenizer (vocabulary ~300) saved in ``directory``; ``pad=None``: pads with EOS;
    ``extra_specials``: more special tokens (after the four it always has)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "<|im_start|>", "<|im_end|>", *extra_specials]
    tok.train_from_iterator(SENTENCES * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos,
                                   pad_token=eos if pad is None else pad, chat_template=chat_template,
                                   additional_special_tokens=["<|im_start|>", *extra_specials])
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def hf_tokenizer(tmp_path_factory) -> Path:
    """BOS ``<s>``, EOS ``<|im_end|>``, padding ``<pad>``, a chat template."""
    return save_tokenizer(tmp_path_factory.mktemp("tok") / "bpe")


@pytest.fixture(scope="session")
def eos_padded_tokenizer(tmp_path_factory) -> Path:
    """No BOS, padding = EOS (as GPT-2-style tokenizers are often set up), no chat template."""
    return save_tokenizer(tmp_path_factory.mktemp("tok") / "eos_pad", bos=None, pad=None, chat_template=None)


WORDS = "the cat sat on mat a dog ran in park what did do it where run".split()


def write_word_corpus(directory: Path, seed: int) -> Path:
    """``corpus.txt`` in ``directory``: 150 documents of 5-30 words drawn from WORDS, blank-line separated."""
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(150)]
    path = directory / "corpus.txt"
    path.write_text("\n\n".join(docs))
    return path
