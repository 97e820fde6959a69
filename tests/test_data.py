"""The data module on tiny synthetic IDX files: where it finds them, what it yields, how it fails."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from gan.data import SPLIT_FILES, DeviceBatches, FashionMNISTDataModule
from gan.errors import UserError
from tests.conftest import write_fake_fmnist


def make_datamodule(root: Path, system_dir: Path, **kwargs) -> FashionMNISTDataModule:
    datamodule = FashionMNISTDataModule(root=str(root), system_dir=str(system_dir), download=False, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzipped"])
def test_files_in_root(tmp_path: Path, gzipped: bool) -> None:
    write_fake_fmnist(tmp_path / "FashionMNIST" / "raw", num_train=96, num_test=32, gzipped=gzipped)
    datamodule = make_datamodule(tmp_path, tmp_path / "nowhere", batch_size=32)
    assert len(datamodule.train_set) == 96 and len(datamodule.test_set) == 32


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzipped"])
def test_files_from_system_dir_are_copied_into_root(tmp_path: Path, gzipped: bool) -> None:
    write_fake_fmnist(tmp_path / "debian", gzipped=gzipped)
    datamodule = make_datamodule(tmp_path / "data", tmp_path / "debian", batch_size=32)
    raw_files = sorted(path.name for path in (tmp_path / "data" / "FashionMNIST" / "raw").iterdir())
    assert raw_files == sorted(name for pair in SPLIT_FILES.values() for name in pair)
    assert len(datamodule.train_set) == 96


def test_batches_are_normalised_shuffled_and_full(tmp_path: Path) -> None:
    write_fake_fmnist(tmp_path / "FashionMNIST" / "raw", num_train=100)
    datamodule = make_datamodule(tmp_path, tmp_path / "nowhere", batch_size=32)
    batches = list(datamodule.train_dataloader())
    assert len(batches) == 3  # 100 images: the partial batch of 4 is dropped
    images, labels = batches[0]
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.min() < -0.9 and images.max() > 0.9
    assert labels.shape == (32,)
    ordered = torch.arange(32) % 10
    assert not torch.equal(labels, ordered)  # shuffled: labels were written in order
    raw_first = datamodule.train_set.images[0]
    assert torch.equal(raw_first, datamodule.train_set[[0]][0][0])


def test_test_split_is_kept_in_order(tmp_path: Path) -> None:
    write_fake_fmnist(tmp_path / "FashionMNIST" / "raw", num_test=40)
    datamodule = make_datamodule(tmp_path, tmp_path / "nowhere", batch_size=32)
    sizes = [len(labels) for _, labels in datamodule.test_dataloader()]
    assert sizes == [32, 8]


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    raw = write_fake_fmnist(tmp_path / "FashionMNIST" / "raw")
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"corrupt Fashion-MNIST file .*train-images-idx3-ubyte.*truncated"):
        make_datamodule(tmp_path, tmp_path / "nowhere")


def test_a_label_outside_the_ten_classes_names_the_file(tmp_path: Path) -> None:
    labels = write_fake_fmnist(tmp_path / "FashionMNIST" / "raw") / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1] + bytes([200]))  # header and length intact
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte: a label is 200, not a class from 0 to 9"):
        make_datamodule(tmp_path, tmp_path / "nowhere")


def test_file_that_is_not_idx_names_the_file(tmp_path: Path) -> None:
    raw = write_fake_fmnist(tmp_path / "FashionMNIST" / "raw")
    (raw / "t10k-labels-idx1-ubyte").write_text("<html>not found</html>")
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte: not an IDX file"):
        make_datamodule(tmp_path, tmp_path / "nowhere")


def test_corrupt_gzip_names_the_file_and_leaves_no_partial_file(tmp_path: Path) -> None:
    debian = write_fake_fmnist(tmp_path / "debian", gzipped=True)
    gz = debian / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:1000])
    with pytest.raises(UserError, match=r"corrupt Fashion-MNIST file .*train-images-idx3-ubyte.gz"):
        make_datamodule(tmp_path / "data", debian)
    assert not list((tmp_path / "data" / "FashionMNIST" / "raw").glob("train-images*"))


def test_missing_data_names_both_remedies(tmp_path: Path) -> None:
    with pytest.raises(UserError) as error:
        make_datamodule(tmp_path / "data", tmp_path / "nowhere")
    message = str(error.value)
    assert "internet" in message and "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in message and "\n" not in message


def test_a_failed_download_removes_the_folders_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline_download(root: str, train: bool, download: bool) -> None:  # as torchvision's, without a network
        (Path(root) / "FashionMNIST" / "raw").mkdir(parents=True, exist_ok=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://x/y.gz, got:\nno network")

    monkeypatch.setattr("gan.data.FashionMNIST", offline_download)
    datamodule = FashionMNISTDataModule(root=str(tmp_path / "new" / "data"), system_dir=str(tmp_path / "nowhere"))
    with pytest.raises(
        UserError, match=r"failed: Error downloading train-images-idx3-ubyte.gz: Tried .*, got: no network"
    ):
        datamodule.prepare_data()
    assert list(tmp_path.iterdir()) == []


def test_non_positive_batch_size_is_refused() -> None:
    with pytest.raises(UserError, match="data.batch_size must be an integer of at least 2, got 0"):
        FashionMNISTDataModule(batch_size=0)


def attach_trainer_on(datamodule: FashionMNISTDataModule, device: str) -> None:
    """Stands in for the Trainer that fit attaches: the data module reads only its strategy's root device."""
    datamodule.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))


def test_on_device_without_a_gpu_keeps_the_cpu_batches_unpinned(tmp_path: Path) -> None:
    write_fake_fmnist(tmp_path / "FashionMNIST" / "raw", num_train=64)
    datamodule = make_datamodule(tmp_path, tmp_path / "nowhere", batch_size=32, on_device=True, pin_memory=True)
    attach_trainer_on(datamodule, "cpu")
    loader = datamodule.train_dataloader()
    assert loader.dataset is datamodule.train_set and not loader.pin_memory  # pinned only for copies to a GPU


def test_on_device_falls_back_to_cpu_memory_when_the_gpu_is_too_full(tmp_path: Path, monkeypatch) -> None:
    write_fake_fmnist(tmp_path / "FashionMNIST" / "raw", num_train=64)
    datamodule = make_datamodule(tmp_path, tmp_path / "nowhere", batch_size=32, on_device=True, pin_memory=True)
    attach_trainer_on(datamodule, "cuda:0")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 80 * 2**30))  # 1000 bytes free
    with pytest.warns(UserWarning, match="do not fit in half of the 0 MiB free on cuda:0; they stay in CPU memory"):
        loader = datamodule.train_dataloader()
    assert loader.dataset is datamodule.train_set and loader.pin_memory


@pytest.mark.parametrize(("drop_last", "num_batches"), [(True, 3), (False, 4)])
def test_device_batches_are_the_sampler_batches_as_one_tensor_per_batch(drop_last: bool, num_batches: int) -> None:
    batches = BatchSampler(RandomSampler(range(100)), 32, drop_last=drop_last)
    torch.manual_seed(0)
    expected = list(batches)
    torch.manual_seed(0)
    index_tensors = list(DeviceBatches(batches, torch.device("cpu")))
    assert len(DeviceBatches(batches, torch.device("cpu"))) == len(expected) == num_batches
    assert [indices.tolist() for indices in index_tensors] == expected  # the last one shorter unless dropped


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_on_device_cuts_the_batches_on_the_gpu(tmp_path: Path) -> None:
    write_fake_fmnist(tmp_path / "FashionMNIST" / "raw", num_train=64)
    datamodule = make_datamodule(tmp_path, tmp_path / "nowhere", batch_size=32, on_device=True, pin_memory=True)
    attach_trainer_on(datamodule, "cuda:0")
    torch.manual_seed(0)
    gpu_batches = list(datamodule.train_dataloader())
    datamodule.on_device = False
    torch.manual_seed(0)
    cpu_batches = list(datamodule.train_dataloader())
    assert len(gpu_batches) == len(cpu_batches) == 2
    for (gpu_images, gpu_labels), (cpu_images, cpu_labels) in zip(gpu_batches, cpu_batches, strict=True):
        assert gpu_images.is_cuda and gpu_labels.is_cuda  # same batches, cut on the GPU
        assert torch.equal(gpu_images.cpu(), cpu_images) and torch.equal(gpu_labels.cpu(), cpu_labels)
    assert datamodule.train_set.images.device.type == "cpu"  # the classifier and metrics read the CPU copy


def test_a_folder_named_by_a_number_is_a_folder(fake_data_root: Path, tmp_path: Path, monkeypatch) -> None:
    """Hydra reads ``data.root=999`` as the number 999: the folder named 999."""
    shutil.copytree(fake_data_root, tmp_path / "999")
    monkeypatch.chdir(tmp_path)
    datamodule = FashionMNISTDataModule(root=999, system_dir="/nonexistent", download=False)
    datamodule.prepare_data()
    assert datamodule.raw_dir == Path("999") / "FashionMNIST" / "raw"
