"""Fashion-MNIST as a LightningDataModule: found on disk, in Debian's package, or downloaded; held in memory."""

import gzip
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler
from torchvision.datasets import FashionMNIST

from gan.errors import (
    UserError,
    expand_home,
    first_line,
    outermost_missing,
    remove_made_folders,
    require_bool,
    require_int,
)

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
NUM_CLASSES = 10
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
RAW_NAMES = [name for pair in SPLIT_FILES.values() for name in pair]


def check_idx_file(path: Path, magic: int, item_size: int) -> int:
    """Check an IDX file's header and length; return its number of items or raise a UserError naming it."""
    data_bytes = path.stat().st_size - (16 if magic == IMAGE_MAGIC else 8)
    with open(path, "rb") as f:
        header = f.read(16 if magic == IMAGE_MAGIC else 8)
    if len(header) < 8 or int.from_bytes(header[:4], "big") != magic:
        raise UserError(f"corrupt Fashion-MNIST file {path}: not an IDX file with magic number {magic}")
    count = int.from_bytes(header[4:8], "big")
    if magic == IMAGE_MAGIC and (len(header) < 16 or header[8:16] != (28).to_bytes(4, "big") * 2):
        raise UserError(f"corrupt Fashion-MNIST file {path}: images are not 28x28")
    if data_bytes != count * item_size:
        raise UserError(
            f"corrupt Fashion-MNIST file {path}: header says {count} items ({count * item_size} bytes),"
            f" file holds {max(data_bytes, 0)} bytes (truncated or damaged; delete it to fetch it again)"
        )
    return count


def _decompress(source: Path, target: Path, root_option: str) -> None:
    """Write ``source`` (gzipped or not) to ``target`` through a temporary file, so no half file is left; a failure
    to write names ``root_option``, the setting of the data folder."""
    partial = target.with_name(target.name + ".partial")
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        with opener(source, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # BadGzipFile is an OSError: caught first
        partial.unlink(missing_ok=True)
        raise UserError(f"corrupt Fashion-MNIST file {source}: {error}") from error
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {target}: {error.strerror}; set {root_option} to a writable folder") from error
    os.replace(partial, target)


class TensorBatches(Dataset):
    """Images and labels in memory, indexed by a whole list of indices at once (one gather per batch)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        indices = torch.as_tensor(indices, device=self.images.device)
        # index_select: a quarter of the time of images[indices] for an MLP batch on the CPU (README, Performance)
        return self.images.index_select(0, indices), self.labels.index_select(0, indices)


class DeviceBatches(Sampler[torch.Tensor]):
    """The index batches of ``batches`` as tensors on ``device``, made (and copied there) once per epoch.

    No batch's indices are converted from a Python list; a GPU cuts each batch from its copy of the images without
    waiting for indices from the CPU (a copy from ordinary CPU memory waits until the GPU has finished its queue).
    """

    def __init__(self, batches: BatchSampler, device: torch.device) -> None:
        self.batches, self.device = batches, device

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[torch.Tensor]:
        batches = list(self.batches)  # the last one may be shorter
        indices = torch.tensor([index for batch in batches for index in batch]).to(self.device)
        yield from indices.split([len(batch) for batch in batches])


class FashionMNISTDataModule(LightningDataModule):
    """Fashion-MNIST 28x28 images in [-1, 1], shuffled batches, the last partial batch dropped.

    ``on_device``: the training batches are cut from a copy of the images on the trainer's GPU, so no batch is
    copied from the CPU (60,000 float images take 188 MB); without a GPU, or when they do not fit, it does nothing.
    """

    def __init__(
        self,
        root: str = "data",
        system_dir: str = "/usr/share/datasets/fashion-mnist",
        batch_size: int = 64,
        download: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        on_device: bool = False,
        root_option: str = "data.root",  # the setting that gives root, named in messages
    ) -> None:
        super().__init__()
        if not str(root).strip():  # an unset shell variable: not the current folder
            raise UserError(f"{root_option} is empty; give the folder that holds (or will hold) FashionMNIST/raw")
        if not str(system_dir).strip():
            raise UserError("data.system_dir is empty; give the folder of Debian's Fashion-MNIST .gz files")
        require_int("data.batch_size", batch_size, least=2)  # BatchNorm in training needs two images
        require_int("data.num_workers", num_workers, least=0)
        for name, value in (("download", download), ("pin_memory", pin_memory), ("on_device", on_device)):
            require_bool(f"data.{name}", value)
        self.root = expand_home(root, root_option)
        self.root_option = root_option
        self.system_dir = expand_home(system_dir, "data.system_dir")
        self.batch_size = batch_size
        self.download = download
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.on_device = on_device
        self.train_set: TensorBatches | None = None
        self.test_set: TensorBatches | None = None

    @property
    def raw_dir(self) -> Path:
        return self.root / "FashionMNIST" / "raw"

    def prepare_data(self) -> None:
        """Find the four IDX files: in ``root``, else in Debian's package, else by torchvision's download."""
        if not self._copy_local_files():
            self._download()

    def _copy_local_files(self) -> bool:
        """Fill ``raw_dir`` from .gz files beside it or in ``system_dir``; return whether all four are there."""
        for name in RAW_NAMES:
            target = self.raw_dir / name
            if target.exists():
                continue
            candidates = [self.raw_dir / f"{name}.gz", self.system_dir / f"{name}.gz", self.system_dir / name]
            source = next((path for path in candidates if path.is_file()), None)
            if source is None:
                return False
            try:
                self.raw_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise UserError(
                    f"cannot create {self.raw_dir}: {error.strerror}; set {self.root_option} to a writable folder"
                ) from error
            _decompress(source, target, self.root_option)
        return True

    def _download(self) -> None:
        missing = ", ".join(name for name in RAW_NAMES if not (self.raw_dir / name).exists())
        not_found = f"Fashion-MNIST not found: {missing} missing in {self.raw_dir} and {self.system_dir}"
        debian = "install Debian's package (apt-get install dataset-fashion-mnist)"
        if not self.download:  # train.py with data.download=false, or analyze.py, which never downloads
            other_way = (
                "download it from the internet with data.download=true (the default)"
                if self.root_option == "data.root"
                else f"give {self.root_option} a folder that holds it (train.py downloads it into its data.root)"
            )
            raise UserError(f"{not_found}; {debian}, or {other_way}")
        made = outermost_missing(self.raw_dir)
        try:
            for train in (True, False):
                FashionMNIST(str(self.root), train=train, download=True)
        except (OSError, RuntimeError) as error:
            remove_made_folders(self.raw_dir, made)  # torchvision made them; one it wrote a part of a file in stays
            raise UserError(
                f"{not_found}; connect to the internet, or {debian} (download failed: {first_line(error)})"
            ) from error

    def _check_split(self, split: str) -> int:
        images_name, labels_name = SPLIT_FILES[split]
        num_images = check_idx_file(self.raw_dir / images_name, IMAGE_MAGIC, 28 * 28)
        num_labels = check_idx_file(self.raw_dir / labels_name, LABEL_MAGIC, 1)
        if num_images != num_labels:
            raise UserError(
                f"corrupt Fashion-MNIST data in {self.raw_dir}: {num_images} {split} images but {num_labels} labels"
            )
        return num_images

    def load_split(self, split: str) -> TensorBatches:
        """The split ("train" or "test") as float images in [-1, 1] of shape (N, 1, 28, 28) and int labels."""
        self._check_split(split)
        dataset = FashionMNIST(str(self.root), train=split == "train", download=False)
        if len(dataset.targets) and (largest := int(dataset.targets.max())) >= NUM_CLASSES:  # cross-entropy would fail
            raise UserError(
                f"corrupt Fashion-MNIST file {self.raw_dir / SPLIT_FILES[split][1]}: a label is {largest}, not a class"
                f" from 0 to {NUM_CLASSES - 1} (damaged; delete it to fetch it again)"
            )
        images = dataset.data.unsqueeze(1).float().div_(127.5).sub_(1.0)
        return TensorBatches(images, dataset.targets)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self.load_split("train")
            self.test_set = self.load_split("test")
        if len(self.train_set) < self.batch_size:
            raise UserError(
                f"data.batch_size {self.batch_size} is larger than the {len(self.train_set)} training images"
                " (the last partial batch is dropped, so no batch would be left)"
            )

    def _loader(self, dataset: TensorBatches, shuffle: bool, drop_last: bool) -> DataLoader:
        sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        batches = DeviceBatches(BatchSampler(sampler, self.batch_size, drop_last=drop_last), dataset.images.device)
        on_cpu = dataset.images.device.type == "cpu"  # images on the GPU: no worker processes, nothing to pin
        pin_memory = self.pin_memory and on_cpu and self._trains_on_gpu()  # pinned: for copies to a GPU only
        # batch_size=None: each "item" the sampler yields is a whole batch of indices
        return DataLoader(
            dataset,
            sampler=batches,
            batch_size=None,
            num_workers=self.num_workers if on_cpu else 0,
            pin_memory=pin_memory,
        )

    def _trains_on_gpu(self) -> bool:
        """Whether the trainer this data module is attached to trains on an NVIDIA GPU."""
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def _on_training_device(self, dataset: TensorBatches) -> TensorBatches:
        """A copy of ``dataset`` on the trainer's GPU when ``on_device`` is set and it fits in half the free memory."""
        if not (self.on_device and self._trains_on_gpu()):
            return dataset
        device = self.trainer.strategy.root_device
        size = dataset.images.nbytes + dataset.labels.nbytes
        free_bytes = torch.cuda.mem_get_info(device)[0]
        if size > free_bytes // 2:
            rank_zero_warn(
                f"data.on_device: the training images ({size / 2**20:,.0f} MiB) do not fit in half of the"
                f" {free_bytes / 2**20:,.0f} MiB free on {device}; they stay in CPU memory"
            )
            return dataset
        return TensorBatches(dataset.images.to(device), dataset.labels.to(device))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._on_training_device(self.train_set), shuffle=True, drop_last=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, drop_last=False)
