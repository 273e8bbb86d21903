"""A budget in tokens: its length by the formula, and the counter that stops a fit at the target."""

from types import SimpleNamespace

import pytest

from entrenar_bench.training.budget import Length, TokenCounter, run_length, tokens_trained


def test_without_tokens_the_run_trains_its_epochs():
    assert run_length(7, None, 63.0, 32, 12) == Length(epochs=7)


@pytest.mark.parametrize("batch_size,steps", [(8, 40), (32, 10), (30, 11)])
def test_the_steps_cover_the_tokens_with_less_than_one_batch_over(batch_size, steps):
    length = run_length(100, 20_000, 62.5, batch_size, batches_per_epoch=4)
    assert length.steps == steps and length.tokens == 20_000
    assert 0 <= steps * batch_size * 62.5 - 20_000 < batch_size * 62.5
    assert length.epochs == -(-steps // 4)   # epochs enough for those steps; train.epochs (100) unused


def test_rows_without_targets_cannot_be_budgeted_in_tokens():
    with pytest.raises(ValueError, match="no target tokens"):
        run_length(1, 10, 0.0, 8, 1)


def test_the_counter_stops_at_the_first_step_reaching_the_target_and_survives_a_resume():
    module = SimpleNamespace(train_targets=0, generated_tokens=0)
    trainer = SimpleNamespace(should_stop=False, world_size=1)
    counter = TokenCounter(limit=100)
    counter.setup(trainer, module, "fit")
    for _ in range(3):
        module.train_targets += 30
        counter.on_train_batch_end(trainer, module)
    assert not trainer.should_stop and counter.seen(module) == 90
    module.generated_tokens += 30   # on-policy batches count too
    counter.on_train_batch_end(trainer, module)
    assert trainer.should_stop and tokens_trained(module) == 120
    resumed = TokenCounter(limit=100)
    resumed.load_state_dict(counter.state_dict())
    assert resumed.seen(SimpleNamespace(train_targets=5, generated_tokens=0)) == 125
