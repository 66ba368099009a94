import torch
import torch.nn.functional as F
from torch import nn

from mnist_core import Net, parameter_count, state_dict_digest, training_flops_per_sample


def test_seed_architecture_shapes_and_size():
    model = Net()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # conv1 60 + conv2 2,416 + fc1 48,120 + fc2 10,164 + fc3 850
    assert parameter_count(model) == 61_610


def test_flop_counter_matches_the_layer_arithmetic():
    # forward MACs: conv1 6*9*30*30 + conv2 16*6*25*11*11 + fc 400*120 + 120*84 + 84*10 = 397,920.
    # backward: weight grads (= forward) + input grads of every layer but conv1 (input is data).
    forward = 2 * 397_920
    conv1 = 2 * 6 * 9 * 30 * 30
    assert training_flops_per_sample(Net()) == forward + forward + (forward - conv1)


def test_flop_count_leaves_model_and_rng_untouched():
    model = Net()
    before = state_dict_digest(model)
    rng = torch.random.get_rng_state()
    training_flops_per_sample(model)
    assert state_dict_digest(model) == before
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_digest_changes_with_any_weight():
    model = Net()
    before = state_dict_digest(model)
    with torch.no_grad():
        model.fc3.bias[0] += 1e-7
    assert state_dict_digest(model) != before


def seed_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The seed script's forward, written out call by call (../shared/seed/)."""
    x = F.max_pool2d(F.relu(F.conv2d(x, params["conv1.weight"], params["conv1.bias"], 1, 2)), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, params["conv2.weight"], params["conv2.bias"])), 2)
    x = x.view(-1, 16 * 5 * 5)
    x = F.relu(F.linear(x, params["fc1.weight"], params["fc1.bias"]))
    x = F.relu(F.linear(x, params["fc2.weight"], params["fc2.bias"]))
    return F.linear(x, params["fc3.weight"], params["fc3.bias"])


class SeedScriptNet(nn.Module):
    """The seed script's module layout, as its checkpoints store it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, 1, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)


def test_forward_and_gradients_are_the_seeds_exactly():
    torch.manual_seed(0)
    model = Net()
    params = {name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()}
    images = torch.rand(32, 1, 28, 28)
    labels = torch.randint(0, 10, (32,))

    ours = model(images)
    theirs = seed_forward(params, images)
    assert torch.equal(ours, theirs)
    F.cross_entropy(ours, labels).backward()
    F.cross_entropy(theirs, labels).backward()
    for name, param in model.named_parameters():
        assert torch.equal(param.grad, params[name].grad), name


def test_a_seed_script_checkpoint_loads_strictly():
    seed_state = SeedScriptNet().state_dict()
    ours = Net().state_dict()
    assert list(ours) == list(seed_state)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in seed_state.items()}
    model = Net()
    model.load_state_dict(seed_state, strict=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in seed_state.items())
