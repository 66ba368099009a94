import torch

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
