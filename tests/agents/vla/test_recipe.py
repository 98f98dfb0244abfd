"""The stronger-policy recipe: extra Meta-World cameras, auxiliary targets, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rapid_env.agents.vla.augment import check_corruptions, color_jitter, corrupt_some
from rapid_env.agents.vla.demos import DemoSet, collect_task
from rapid_env.agents.vla.policy import VLAPolicy
from rapid_env.agents.vla.train import evaluate, train
from rapid_env.tasks.metaworld_task import MetaWorldTask


@pytest.fixture(scope="module")
def demos() -> DemoSet:
    """Two successful demos of push through the corner, wrist and hand-crop views, with targets."""
    return collect_task(
        "push", 2, chunk_size=3, image_size=16, cameras=("main", "gripperPOV", "hand_crop"),
        targets=True,
    )


def test_demos_hold_every_camera_and_the_object_targets(demos: DemoSet) -> None:
    n = len(demos)
    assert demos.images.shape == (n, 3, 16, 16, 3)
    assert demos.cameras == ["main", "gripperPOV", "hand_crop"]
    assert demos.targets is not None and demos.targets.shape == (n, 9)
    env = MetaWorldTask("push", image_size=16)
    env.reset(seed=100_000)  # the first demo's layout: its first target row is this state's
    np.testing.assert_allclose(demos.targets[0], env.object_targets(), atol=1e-6)
    assert np.all(demos.targets[:, 3:6] == 0)  # push has one object
    env.close()
    # the wrist and crop views are different pictures of the same tick
    assert not np.array_equal(demos.images[0, 0], demos.images[0, 1])
    assert not np.array_equal(demos.images[0, 0], demos.images[0, 2])


def test_select_keeps_the_same_steps_through_fewer_cameras(demos: DemoSet, tmp_path) -> None:
    one = demos.select(cameras=["main"])
    assert one.images.shape == demos.images.shape[:1] + demos.images.shape[2:]
    np.testing.assert_array_equal(one.images, demos.images[:, 0])
    two = demos.select(["push"], ["main", "hand_crop"])
    np.testing.assert_array_equal(two.images, demos.images[:, [0, 2]])
    assert two.targets is not None
    demos.save(tmp_path / "d.npz")
    back = DemoSet.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.targets, demos.targets)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="camera 'corner9'.*allowed"):
        demos.select(cameras=["corner9"])
    with pytest.raises(ValueError, match="task 'reach'"):
        demos.select(["reach"])


def test_unknown_demo_camera_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown camera 'wrist'; allowed: .*gripperPOV"):
        collect_task("push", 1, image_size=16, cameras=("main", "wrist"))


def test_auxiliary_loss_trains_a_head_the_forward_pass_never_uses(demos: DemoSet) -> None:
    model, tok, card = train("chunk-regress", demos, minutes=5, max_steps=3, batch=4,
                             aux_weight=1.0, jitter=0.2, noise_aug=("gaussian_noise",),
                             noise_share=0.5, quiet=True)
    assert model.cfg.aux_dim == 9 and model.cfg.cameras == ("main", "gripperPOV", "hand_crop")
    assert "auxiliary localisation loss" in card["training"]
    assert card["noise_seen_in_training"] == ["gaussian_noise"]
    assert all("aux_head" not in name for name in model.block_names())
    # the head is trained: its weights moved from a model built the same way
    plain, _, _ = train("chunk-regress", demos, minutes=5, max_steps=3, batch=4, quiet=True,
                        aux_weight=1.0, jitter=0.0, noise_aug=())
    assert plain.aux_head is not None
    policy = VLAPolicy(model, tok)
    assert policy.cameras == ("gripperPOV", "hand_crop")
    result = evaluate(policy, ["push"], seeds=1, verbose=False, noise="fog:1")
    assert result["noise"] == "fog:1" and set(result["per_task"]) == {"push"}


def test_recipe_refusals(demos: DemoSet) -> None:
    with pytest.raises(ValueError, match="needs family chunk-regress"):
        train("flow", demos, minutes=1, max_steps=1, aux_weight=1.0, quiet=True)
    no_targets = DemoSet(demos.images, demos.proprio, demos.chunks, demos.task_index,
                         demos.episode, demos.tasks, demos.instructions, demos.cameras)
    with pytest.raises(ValueError, match="collect --targets"):
        train("chunk-regress", no_targets, minutes=1, max_steps=1, aux_weight=1.0, quiet=True)
    with pytest.raises(ValueError, match="unknown corruption 'rain'; allowed: gaussian_noise"):
        check_corruptions(["rain"])
    with pytest.raises(ValueError, match="changes the task"):
        evaluate(VLAPolicy(*train("chunk-regress", demos, minutes=1, max_steps=1,
                                  quiet=True)[:2]), ["push"], 1, noise="pro-swap")


def test_color_jitter_is_seeded_and_keeps_shape() -> None:
    imgs = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 2, 8, 8, 3),
                                                               dtype=np.uint8))
    a = color_jitter(imgs, 0.3, torch.Generator().manual_seed(1))
    b = color_jitter(imgs, 0.3, torch.Generator().manual_seed(1))
    assert a.shape == imgs.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, imgs)
    assert torch.equal(color_jitter(imgs, 0.0, torch.Generator()), imgs)


def test_corrupt_some_touches_only_its_share() -> None:
    imgs = torch.full((6, 8, 8, 3), 128, dtype=torch.uint8)
    none = corrupt_some(imgs, ("gaussian_noise",), 0.0, 2, np.random.default_rng(0))
    assert torch.equal(none, imgs)
    every = corrupt_some(imgs, ("gaussian_noise",), 1.0, 2, np.random.default_rng(0))
    assert all(not torch.equal(every[i], imgs[i]) for i in range(6))
    again = corrupt_some(imgs, ("gaussian_noise",), 1.0, 2, np.random.default_rng(0))
    assert torch.equal(every, again)
