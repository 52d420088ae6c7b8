"""The classifier the labeler starts with: trained once from the data the project ships.

:data:`SHIPPED_DATA` is ``data/spam/label-text`` of the source tree this package runs
from (found from the package's own path, never the working directory).
:func:`load_or_train` loads a model file, or trains one from the given ``label,text``
files (default: every shipped file) and saves it there first. Training takes about a
minute, so a trained model is also kept in a cache (``$XDG_CACHE_HOME/plaza/models``,
else ``~/.cache/plaza/models``) under the SHA-256 of the training files and of the
classifier's code: a second network on the same machine copies it instead of training
again, and a change to the data or the code trains afresh.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from plaza.errors import PlazaError
from plaza.moderation.errors import ModelFileError

if TYPE_CHECKING:
    from plaza.moderation.classifier import Classifier

SHIPPED_DATA: Final = Path(__file__).resolve().parents[3] / "data" / "spam" / "label-text"
"""The shipped ``label,text`` files (the YouTube Spam Collection, see its README)."""

_CODE: Final = ("classifier.py", "text.py", "signals.py", "evaluate.py", "modelfile.py")


def shipped_files() -> list[Path]:
    return sorted(SHIPPED_DATA.glob("*.csv"))


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "plaza" / "models"


def model_key(files: Sequence[Path]) -> str:
    """SHA-256 over the training files and the classifier's code."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in [*(here / name for name in _CODE), *files]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def load_or_train(
    model: Path,
    train_data: Sequence[Path] = (),
    *,
    say: Callable[[str], None] = lambda line: None,
    cache: Path | None = None,
) -> Classifier:
    """The classifier at ``model``; made first when the file does not exist (see the
    module docstring). ``cache``: where trained models are kept (None: :func:`cache_dir`)."""
    from plaza.moderation.dataset import read_csv
    from plaza.moderation.evaluate import train
    from plaza.moderation.modelfile import load, save

    if model.exists():
        return load(model)
    files = list(train_data) or shipped_files()
    if not files:
        raise PlazaError(f"no model at {model} and no training data (looked in {SHIPPED_DATA})")
    try:
        cached = (cache or cache_dir()) / f"spam-{model_key(files)}.json"
    except OSError as exc:
        raise PlazaError(f"cannot read the training data: {exc}") from exc
    model.parent.mkdir(parents=True, exist_ok=True)
    if cached.exists():
        try:
            classifier = load(cached)
        except ModelFileError:
            cached.unlink(missing_ok=True)
        else:
            shutil.copyfile(cached, model)
            say(f"classifier copied from the cache ({cached})")
            return classifier
    data = read_csv(files[0])
    for f in files[1:]:
        data = data + read_csv(f)
    say(f"training the classifier on {len(data)} texts from {len(files)} files (once)")
    classifier = train(data)
    save(classifier, model)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp")
        shutil.copyfile(model, tmp)
        tmp.replace(cached)
    except OSError:
        pass  # a cache that cannot be written only costs the next network a training
    return classifier
