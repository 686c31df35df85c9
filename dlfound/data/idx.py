"""The four IDX files of MNIST-style datasets: their names, sources, checksums and a verified reader.

Fashion-MNIST is verified by the sha256 of each file's DECOMPRESSED content (Debian
re-gzipped the files, so .gz checksums differ between copies; the content does not).
For MNIST no decompressed checksums are stored: a manual copy is verified only by its
IDX header (magic number, 28x28 images, 60000/10000 examples) and label range (0-9).
Downloads of either are also checked against the official .gz sha256 that TFDS registers.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from dlfound.data.errors import DataIntegrityError

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclasses.dataclass(frozen=True)
class IdxSpec:
    """Where a dataset's four files come from and what they must contain."""

    name: str
    base_url: str
    content_sha256: Mapping[str, str]  # file name -> sha256 of the decompressed bytes
    archive_sha256: Mapping[str, str]  # file name -> sha256 of the official .gz download
    num_train: int = 60000
    num_test: int = 10000
    image_shape: tuple[int, int] = (28, 28)
    num_classes: int = 10

    def url(self, filename: str) -> str:
        return self.base_url + filename


SPECS: dict[str, IdxSpec] = {
    "mnist": IdxSpec(
        name="mnist",
        base_url="https://storage.googleapis.com/cvdf-datasets/mnist/",  # TFDS's mirror of LeCun's files
        content_sha256={},
        archive_sha256={
            TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion_mnist": IdxSpec(
        name="fashion_mnist",
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        content_sha256={
            TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        archive_sha256={
            TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}


def encode_idx(array: np.ndarray) -> bytes:
    """The uncompressed IDX bytes of a uint8 array (big-endian header, then the data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def decode_idx(raw: bytes, source: str) -> np.ndarray:
    """Parses uncompressed IDX bytes holding unsigned bytes; DataIntegrityError if malformed."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] == 0:
        raise DataIntegrityError(f"{source} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    offset = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:offset], dtype=">u4"))
    if len(dims) != ndim or len(raw) != offset + int(np.prod(dims)):
        raise DataIntegrityError(f"{source}: IDX header shape {dims} disagrees with the file's length")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def read_idx_gz(path: Path, spec: IdxSpec) -> np.ndarray:
    """Decompresses and parses one IDX .gz file, checking its content sha256 when `spec` knows it."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataIntegrityError(f"{path} is not a readable gzip file ({exc}); use the official file")
    expected = spec.content_sha256.get(path.name)
    if expected is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected:
            raise DataIntegrityError(
                f"checksum mismatch for {path}: the sha256 of its decompressed content is {actual}, "
                f"expected {expected} (official {spec.name} {path.name}); the file is corrupted or "
                "a different file; replace it with the official one"
            )
    return decode_idx(raw, str(path))


def _check_split(images: np.ndarray, labels: np.ndarray, count: int, spec: IdxSpec, split: str) -> None:
    where = f"{spec.name} {split} split"
    if images.shape != (count, *spec.image_shape):
        expected = (count, *spec.image_shape)
        raise DataIntegrityError(f"{where}: images have shape {images.shape}, expected {expected}")
    if labels.shape != (count,):
        raise DataIntegrityError(f"{where}: labels have shape {labels.shape}, expected {(count,)}")
    if labels.size and labels.max() >= spec.num_classes:
        raise DataIntegrityError(f"{where}: label {labels.max()} is outside 0..{spec.num_classes - 1}")


def read_idx_dir(directory: Path, spec: IdxSpec) -> dict[str, np.ndarray]:
    """Reads and verifies the four files in `directory`: x_train, y_train, x_test, y_test as uint8."""
    arrays = {key: read_idx_gz(directory / filename, spec)
              for key, filename in zip(("x_train", "y_train", "x_test", "y_test"), FILES)}
    _check_split(arrays["x_train"], arrays["y_train"], spec.num_train, spec, "train")
    _check_split(arrays["x_test"], arrays["y_test"], spec.num_test, spec, "test")
    return arrays
