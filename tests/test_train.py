import pytest
import torch
from torch import nn

from mnist_core import (
    Net,
    NonFiniteLossError,
    evaluate,
    load_mnist,
    make_loader,
    make_optimizer,
    make_train_step,
    seed_everything,
    state_dict_digest,
    train_epoch,
)

CPU = torch.device("cpu")


@pytest.fixture
def tiny_data(tiny_mnist):
    return load_mnist(tiny_mnist, download=False)


def train(
    data, loader: str, seed: int = 0, epochs: int = 2, lr: float = 1e-3, batch_size: int = 50
) -> Net:
    generator = seed_everything(seed)
    model = Net()
    step = make_train_step(model, make_optimizer(model, lr))
    batches = make_loader(loader, data.train, batch_size, CPU, generator)
    for _ in range(epochs):
        train_epoch(step, batches, len(batches))
    return model


def test_both_loaders_give_bitwise_identical_weights(tiny_data):
    assert state_dict_digest(train(tiny_data, "tensor")) == state_dict_digest(
        train(tiny_data, "torchvision")
    )


def test_same_seed_same_weights_other_seed_other_weights(tiny_data):
    first = state_dict_digest(train(tiny_data, "tensor", seed=1))
    assert state_dict_digest(train(tiny_data, "tensor", seed=1)) == first
    assert state_dict_digest(train(tiny_data, "tensor", seed=2)) != first


def test_training_learns_the_tiny_task(tiny_data):
    model = train(tiny_data, "tensor", epochs=6, lr=3e-3)
    result = evaluate(model, make_loader("tensor", tiny_data.test, 40, CPU))
    assert result.accuracy_pct > 80


def test_losses_come_back_per_step_on_the_device(tiny_data):
    seed_everything(0)
    model = Net()
    batches = make_loader("tensor", tiny_data.train, 50, CPU, torch.Generator().manual_seed(0))
    seen = []
    step = make_train_step(model, make_optimizer(model, 1e-3))
    losses = train_epoch(step, batches, 4, on_step=lambda index, images: seen.append(index))
    assert losses.shape == (4,) and seen == [0, 1, 2, 3]
    assert bool(torch.isfinite(losses).all())


@pytest.mark.parametrize("loader", ["tensor", "torchvision"])
def test_each_step_counts_the_images_its_batch_held(tiny_data, loader):
    """300 images at batch 70: four full batches and a last one of 20, counted as 20."""
    model = Net()
    batches = make_loader(loader, tiny_data.train, 70, CPU, torch.Generator().manual_seed(0))
    counted = []
    step = make_train_step(model, make_optimizer(model, 1e-3))
    train_epoch(step, batches, len(batches), lambda index, images: counted.append(images))
    assert counted == [70, 70, 70, 70, 20]


def test_divergence_stops_with_the_step_named(tiny_data):
    model = Net()
    with torch.no_grad():
        model.fc3.bias[3] = float("nan")
    batches = make_loader("tensor", tiny_data.train, 50, CPU, torch.Generator().manual_seed(0))
    with pytest.raises(NonFiniteLossError, match="at step 1"):
        train_epoch(make_train_step(model, make_optimizer(model, 1e-3)), batches, 3)


class ConstantClass(nn.Module):
    """Predicts class 7 for every image, so every count is known in advance."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        logits = torch.zeros(len(images), 10) + self.weight
        logits[:, 7] = 1.0
        return logits


def test_evaluation_counts_every_sample_and_averages_loss_per_sample(tiny_data):
    # batch 30 does not divide 100 test images: the last partial batch must count too.
    result = evaluate(ConstantClass(), make_loader("tensor", tiny_data.test, 30, CPU))
    labels = tiny_data.test.targets
    sevens = int((labels == 7).sum())
    assert result.accuracy_pct == pytest.approx(100 * sevens / len(labels))
    assert result.per_class_accuracy_pct[7] == 100.0
    assert result.per_class_accuracy_pct[0] == 0.0
    assert sum(map(sum, result.confusion)) == len(labels)
    model = Net()
    evaluate(model, make_loader("tensor", tiny_data.test, 30, CPU))
    assert model.training  # the next epoch trains in training mode
    assert [row[7] for row in result.confusion] == torch.bincount(labels, minlength=10).tolist()
    expected_loss = torch.nn.functional.cross_entropy(
        ConstantClass()(torch.zeros(len(labels), 1, 28, 28)), labels
    ).item()
    assert result.loss == pytest.approx(expected_loss)


@pytest.mark.slow
@pytest.mark.real_data
def test_one_real_epoch_on_cpu_reaches_97_percent(real_mnist):
    data = load_mnist(real_mnist, download=False)
    model = train(data, "tensor", epochs=1, batch_size=100)
    result = evaluate(model, make_loader("tensor", data.test, 1000, CPU))
    assert result.accuracy_pct >= 97.0
