"""Nothing lost, nothing silently wrong: empty splits are refused naming the file or the task
and split, and a loss that is NaN or infinite stops a run (or, when asked, skips the step)
instead of being trained on, selected, scored or turned into an observation or a reward."""

from __future__ import annotations

import gzip
import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

import mtl_sched.training.trainer
from mtl_sched.cli import main
from mtl_sched.cli.compare import one_line_error
from mtl_sched.data.conll import load_conll2000
from mtl_sched.data.fdu_mtl import load_fdu_mtl, read_fdu_file
from mtl_sched.data.linearize import ewt_seq2seq_columns
from mtl_sched.data.multi30k import multi30k_task
from mtl_sched.data.paths import DataFormatError
from mtl_sched.data.task import Task
from mtl_sched.data.ud_pos import UD_POS_TREEBANKS, load_ud_upos
from mtl_sched.envs import BatchedSchedulingVecEnv, MTLSchedulingEnv
from mtl_sched.hooks import SchedulerDriver
from mtl_sched.models.base import Batch, MTLModel, TaskOutput
from mtl_sched.observation.probing import ProbeConfig, probe_from_probabilities
from mtl_sched.registry import make_scheduler
from mtl_sched.scheduling import NonFiniteLossError, Step
from mtl_sched.training import Trainer, TrainerConfig

NAN = float("nan")


# ------------------------------------------------------------------------- empty splits
def _dataset(n: int) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"x": [[0.0, 1.0]] * n, "label": [i % 2 for i in range(n)]})


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_a_task_with_an_empty_split_is_refused_naming_task_and_split(split):
    splits = {name: _dataset(0 if name == split else 4) for name in ("train", "validation", "test")}
    with pytest.raises(ValueError, match=rf"task 'mine': split '{split}' is empty"):
        Task("mine", splits, num_classes=2)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("test_file", ["", "\n\n  \n"])
def test_an_empty_fdu_mtl_file_is_an_error_naming_it(tmp_path, test_file):
    _write(tmp_path / "fdu_mtl" / "books.task.train", "1\tgood\n0\tbad\n1\tfine\n")
    _write(tmp_path / "fdu_mtl" / "books.task.test", test_file)
    with pytest.raises(DataFormatError, match=r"books\.task\.test: no examples"):
        load_fdu_mtl(tmp_path, domains=["books"], dev_size=1)
    with pytest.raises(DataFormatError, match=r"books\.task\.test: no examples"):
        read_fdu_file(tmp_path / "fdu_mtl" / "books.task.test")


CONLL_SENTENCE = "He PRP B-NP\nruns VBZ B-VP\n\n"


def test_an_empty_conll_file_or_split_is_an_error_naming_it(tmp_path):
    _write(tmp_path / "conll2000" / "train.txt", CONLL_SENTENCE * 3)
    _write(tmp_path / "conll2000" / "test.txt", "\n")
    with pytest.raises(DataFormatError, match=r"test\.txt: no sentences"):
        load_conll2000(tmp_path, dev_sentences=1)
    _write(tmp_path / "conll2000" / "test.txt", CONLL_SENTENCE)
    with pytest.raises(ValueError, match=r"task 'pos': split 'test' is empty"):
        load_conll2000(tmp_path, dev_sentences=1, limits={"test": 0})


CONLLU_SENTENCE = (
    "1\tDogs\tdog\tNOUN\tNNS\t_\t2\tnsubj\t_\t_\n2\tbark\tbark\tVERB\tVBP\t_\t0\troot\t_\t_\n\n"
)


@pytest.mark.parametrize("test_file", ["", "# sent_id = only-a-comment\n\n"])
def test_an_empty_conllu_file_is_an_error_naming_it(tmp_path, test_file):
    folder, names = UD_POS_TREEBANKS["en_lines"]
    for name, text in zip(names, (CONLLU_SENTENCE, CONLLU_SENTENCE, test_file), strict=True):
        _write(tmp_path / "ud" / folder / name, text)
    with pytest.raises(DataFormatError, match=r"en_lines-ud-test\.conllu: no sentences"):
        load_ud_upos("en_lines", tmp_path)


def test_an_empty_ewt_file_of_nmt_aux_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "ud" / "UD_English-EWT"
    _write(folder / "en_ewt-ud-train.conllu.gz", CONLLU_SENTENCE)
    _write(folder / "en_ewt-ud-dev.conllu.gz", "")
    _write(folder / "en_ewt-ud-test.conllu.gz", CONLLU_SENTENCE)
    with pytest.raises(DataFormatError, match=r"en_ewt-ud-dev\.conllu\.gz: no sentences"):
        ewt_seq2seq_columns(tmp_path)


def test_an_empty_multi30k_file_is_an_error_naming_it(tmp_path):
    for stem in ("train", "val", "test_2016_flickr"):
        text = "" if stem == "test_2016_flickr" else "A dog runs.\n"
        _write(tmp_path / "multi30k" / f"{stem}.en", text)
        _write(tmp_path / "multi30k" / f"{stem}.de", text and "Ein Hund rennt.\n")
    with pytest.raises(DataFormatError, match=r"test_2016_flickr\.en: no sentences"):
        multi30k_task(tmp_path, min_count=1)


# -------------------------------------------------------------------- non-finite losses
class NaNModel(torch.nn.Module):
    """Delegates to ``inner``; its outputs turn NaN at chosen training steps or for a task.

    :param inner: the model wrapped.
    :param train_steps: the training steps (read from ``clock``) whose logits become NaN.
    :param eval_task: the task whose evaluation-mode outputs (validation, test, probe) are NaN.
    """

    def __init__(
        self, inner: MTLModel, train_steps: Sequence[int] = (), eval_task: str | None = None
    ) -> None:
        super().__init__()
        self.inner = inner
        self.task_names = inner.task_names
        self.train_steps = set(train_steps)
        self.eval_task = eval_task
        self.clock: Callable[[], int] = lambda: 0

    def collate(self, task: str, rows: dict) -> Batch:
        return self.inner.collate(task, rows)

    def shared_parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.inner.shared_parameters()

    def task_parameters(self, task: str) -> Iterator[torch.nn.Parameter]:
        return self.inner.task_parameters(task)

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        out = self.inner.task_output(task, batch)
        poisoned = self.clock() in self.train_steps if self.training else task == self.eval_task
        return TaskOutput(out.logits * NAN, out.targets) if poisoned else out


def nan_trainer(bench, seed: int = 0, budget: int = 320, **options) -> Trainer:
    """A trainer of ``bench`` whose model is a `NaNModel` with ``options``; its config takes
    the ``TrainerConfig`` fields among them."""
    fields = {k: options.pop(k) for k in list(options) if k in TrainerConfig.__dataclass_fields__}
    config = TrainerConfig(**{**vars(bench.trainer_config), "budget": budget, **fields})
    trainer = Trainer(NaNModel(bench.make_model(seed), **options), bench.tasks, config, seed)
    trainer.model.clock = lambda: trainer.step_count
    return trainer


def all_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@pytest.mark.parametrize("scheduler", ["uniform", "greedy", "random", "dtp"])
def test_a_nan_training_loss_stops_the_run_naming_step_and_task(tiny_benchmark, scheduler):
    trainer = nan_trainer(tiny_benchmark, budget=640, train_steps=[3])
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(nan\)") as caught:
        trainer.run(make_scheduler(scheduler))
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.step == 3 and error.task in tiny_benchmark.task_names
    assert error.kind == "training" and f"task {error.task!r} at step 3" in str(error)
    assert trainer.step_count == 3 and all_finite(trainer.model)  # no update from the NaN
    copy = pickle.loads(pickle.dumps(error))  # crosses process boundaries intact
    assert (copy.task, copy.step, str(copy)) == (error.task, error.step, str(error))


def test_skip_mode_skips_and_counts_the_non_finite_steps(tiny_benchmark):
    trainer = nan_trainer(tiny_benchmark, train_steps=[3, 4, 7], on_nonfinite="skip")
    result = trainer.run(make_scheduler("round-robin"))
    assert result.skipped_steps == trainer.skipped_steps == 3
    assert result.examples_seen == 320 and result.steps == 320 // 32
    assert np.isnan(result.loss_history[[3, 4, 7]]).all()
    assert np.isfinite(np.nanmax(result.loss_history[[0, 1, 2, 5, 6]], axis=1)).all()
    assert all_finite(trainer.model)
    assert np.isfinite(result.test.losses).all()
    assert np.isfinite(result.best_validation.losses).all()


def test_on_nonfinite_takes_raise_or_skip_only():
    assert TrainerConfig().on_nonfinite == "raise"
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        TrainerConfig(on_nonfinite="ignore")


def test_a_non_finite_combined_loss_stops_the_step(tiny_benchmark):
    trainer = tiny_benchmark.make_trainer(0)
    scheduler = make_scheduler("uniform")
    trainer.attach(scheduler)
    scheduler.combine = lambda losses, context: losses.sum() * math.inf
    with pytest.raises(NonFiniteLossError, match="combined step loss") as caught:
        trainer.train_step(Step.select(0), scheduler)
    assert (caught.value.task, caught.value.step, caught.value.value) == (None, 0, math.inf)


def test_a_nan_validation_loss_stops_the_run_naming_the_task(tiny_benchmark):
    task = tiny_benchmark.task_names[1]
    trainer = nan_trainer(tiny_benchmark, eval_task=task, on_nonfinite="skip")
    with pytest.raises(NonFiniteLossError, match=rf"validation loss \(nan\) of task '{task}'"):
        trainer.run(make_scheduler("uniform"))


def test_the_probe_pass_refuses_non_finite_probabilities_and_losses():
    good = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    gold = torch.tensor([0, 1])
    config = ProbeConfig(bins=4)
    bad = torch.tensor([[NAN, NAN], [0.3, 0.7]])
    with pytest.raises(NonFiniteLossError, match=r"probe loss .* of task 'b' at step 5") as caught:
        probe_from_probabilities([good, bad], config, [gold, gold], task_names=["a", "b"], step=5)
    assert (caught.value.task, caught.value.step, caught.value.kind) == ("b", 5, "probe")
    infinite = [torch.tensor([0.1, math.inf]), None]
    with pytest.raises(NonFiniteLossError, match="of task 'a'"):
        probe_from_probabilities([good, good], config, [gold, gold], infinite, ["a", "b"])
    assert probe_from_probabilities([good], config, [gold]).losses.shape == (1,)


def _factory(bench, **options):
    return lambda seed: nan_trainer(bench, seed, **options)


def test_the_environment_never_turns_nan_into_an_observation(tiny_benchmark):
    task = tiny_benchmark.task_names[2]
    env = MTLSchedulingEnv(
        None,
        trainer_factory=_factory(tiny_benchmark, eval_task=task),
        task_names=tiny_benchmark.task_names,
        reference_accuracies=None,
    )
    with pytest.raises(NonFiniteLossError, match=rf"probe loss .* of task '{task}' at step 0"):
        env.reset(seed=0)


def test_the_environment_stops_at_a_nan_training_loss(tiny_benchmark):
    env = MTLSchedulingEnv(
        None,
        trainer_factory=_factory(tiny_benchmark, train_steps=[2]),
        task_names=tiny_benchmark.task_names,
        reference_accuracies=None,
    )
    env.reset(seed=0)
    env.step(0)
    env.step(1)
    with pytest.raises(NonFiniteLossError, match="training loss") as caught:
        env.step(3)
    assert (caught.value.task, caught.value.step) == (tiny_benchmark.task_names[3], 2)


def test_the_batched_environment_refuses_nan_probes_and_training_losses(tiny_benchmark):
    names = tiny_benchmark.task_names
    env = BatchedSchedulingVecEnv(tiny_benchmark, 2, reference_accuracies=None)
    env.seed(0)
    env.reset()
    with torch.no_grad():
        env.model.head_weight[1, 2] = NAN  # replica 1's head of task 2
    with pytest.raises(NonFiniteLossError, match=r"replica 1") as caught:
        env.step(np.array([0, 0]))  # neither trains task 2: the probe finds it
    assert (caught.value.kind, caught.value.task, caught.value.step) == ("probe", names[2], 1)
    env.reset()
    with torch.no_grad():
        env.model.head_weight[0, 1] = NAN
    with pytest.raises(NonFiniteLossError, match=r"environment 0") as caught:
        env.step(np.array([1, 0]))
    assert (caught.value.kind, caught.value.task, caught.value.step) == ("training", names[1], 0)


def test_the_driver_refuses_non_finite_losses_naming_step_and_task():
    driver = SchedulerDriver(make_scheduler("round-robin"), ["a", "b"], budget=100)
    driver.next_step()
    driver.report(1.0, 4)
    assert driver.next_task() == 1
    with pytest.raises(NonFiniteLossError, match="of task 'b' at step 1"):
        driver.report(NAN, 4)
    with pytest.raises(NonFiniteLossError, match="validation loss"):
        driver.report_evaluation([0.5, 0.5], losses=[0.1, math.inf])


@pytest.mark.parametrize("where", ["probabilities", "losses"])
def test_the_driver_refuses_non_finite_probe_inputs_naming_task_and_step(where):
    driver = SchedulerDriver(make_scheduler("uniform"), ["a", "b"])
    good = np.array([[0.9, 0.1], [0.4, 0.6]])
    probabilities, losses = [good, good], [[0.1, 0.5], [0.2, 0.3]]
    if where == "probabilities":
        probabilities = [good, np.array([[NAN, 0.5], [0.4, 0.6]])]
    else:
        losses = [[0.1, 0.5], [0.2, math.inf]]
    driver.step = 3
    with pytest.raises(NonFiniteLossError, match=rf"probe loss .* of task 'b' at step 3.*{where}"):
        driver.probe_result(probabilities, [[0, 1], [0, 1]], losses)
    assert driver.probe_result([good, good], [[0, 1], [0, 1]]).losses.shape == (2,)


def test_leave_one_out_transfer_stops_at_a_nan_loss_naming_task_fold_and_step():
    from mtl_sched.models.shared_mlp import SharedMLP
    from mtl_sched.transfer import cross_validated_transfer, fold_indices

    n = 20
    x = np.random.default_rng(0).normal(size=(n, 3))
    x[fold_indices(n, 4, seed=0)[0][0], 1] = NAN  # tested in fold 0, trained on in folds 1-3
    labels = [i % 2 for i in range(n)]
    splits = {
        split: datasets.Dataset.from_dict(
            {"x": x[lo:hi].astype(np.float32).tolist(), "label": labels[lo:hi]}
        )
        for split, (lo, hi) in {"train": (0, 10), "validation": (10, 15), "test": (15, 20)}.items()
    }
    task = Task("unseen", splits, num_classes=2)
    model = SharedMLP(3, {"seen": 2}, hidden_sizes=())
    with pytest.raises(NonFiniteLossError, match=r"of task 'unseen' at step 0 \(fold 1") as caught:
        cross_validated_transfer(model, task, seed=0, folds=4, epochs=3)
    assert (caught.value.task, caught.value.step, caught.value.kind) == ("unseen", 0, "training")


# ---------------------------------------------------------------------------------- CLI
@pytest.fixture
def nan_training(monkeypatch):
    """Every training step's outputs are NaN (the probe and evaluations are untouched)."""
    real = mtl_sched.training.trainer.task_outputs

    def poisoned(model, requests):
        return [TaskOutput(o.logits * NAN, o.targets) for o in real(model, requests)]

    monkeypatch.setattr(mtl_sched.training.trainer, "task_outputs", poisoned)


def test_run_reports_a_non_finite_loss_in_one_line(nan_training):
    argv = ["run", "--benchmark", "synthetic", "--small", "--scheduler", "uniform"]
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--budget", "320", "--no-tensorboard"])
    message = str(caught.value.code)
    assert message.startswith("mtl-sched run: non-finite training loss (nan) of task ")
    assert "at step 0" in message and "\n" not in message


def test_compare_reports_a_non_finite_loss_in_one_line(nan_training, tmp_path, capsys):
    argv = ["compare", "--benchmark", "synthetic", "--small", "--schedulers", "uniform"]
    db = str(tmp_path / "runs.sqlite")
    status = main([*argv, "--seeds", "0", "--budget", "320", "--db", db, "--no-progress"])
    out = capsys.readouterr().out
    assert status == 1 and "Traceback" not in out
    failed = out.split("failed: uniform seed 0\n", 1)[1].splitlines()[0]
    assert failed.startswith("non-finite training loss (nan) of task ")


def test_one_line_error_keeps_other_tracebacks_whole():
    trace = "Traceback (most recent call last):\n  File 'x'\nKeyError: 'a'"
    assert one_line_error(trace) == trace
    data = "Traceback ...\nmtl_sched.data.paths.DataFormatError: a.txt: no sentences found"
    assert one_line_error(data) == "a.txt: no sentences found"


# ------------------------------------------------------------------- corrupt data files
def _conll(path: Path) -> object:
    from mtl_sched.data.conll import CONLL2000_COLUMNS, read_conll

    return read_conll(path, CONLL2000_COLUMNS, iob_columns=("chunk",))


def _conllu(path: Path) -> object:
    from mtl_sched.data.conllu import read_conllu

    return read_conllu(path)


def _parallel(path: Path) -> object:
    from mtl_sched.data.multi30k import read_parallel

    return read_parallel(path, path)


def _vectors(path: Path) -> object:
    from mtl_sched.data.vocabulary import Vocabulary
    from mtl_sched.models.text_classifier import load_word_vectors

    return load_word_vectors(path, Vocabulary.build([["a", "b"]]), dim=2)


# reader, a valid sentence/example, a malformed line (line 2 of the file)
READERS = {
    "fdu_mtl": (read_fdu_file, "1\tgood\n", "good\n"),
    "conll": (_conll, "He PRP B-NP\n", "runs VBZ\n"),
    "conllu": (_conllu, CONLLU_SENTENCE.split("\n")[0] + "\n", "2\tbark\tbark\tVERB\n"),
    "multi30k": (_parallel, "A dog runs.\n", " \n"),
    "vectors": (_vectors, "a 0.1 0.2\n", "b 0.3\n"),
}


@pytest.mark.parametrize("reader", READERS)
def test_a_malformed_line_is_an_error_naming_file_and_line(tmp_path, reader):
    read, good, bad = READERS[reader]
    path = _write(tmp_path / f"{reader}.txt", good + bad + good)
    with pytest.raises(DataFormatError, match=rf"{reader}\.txt:2: ") as caught:
        read(path)
    assert (caught.value.path, caught.value.line) == (path, 2)


@pytest.mark.parametrize("reader", ["conll", "conllu", "multi30k"])
def test_garbage_bytes_are_an_error_naming_file_and_line(tmp_path, reader):
    read, good, _ = READERS[reader]
    path = tmp_path / f"{reader}.txt"
    path.write_bytes(good.encode() + b"\xff\xfe\x00\x9c garbage \x81\n" + good.encode())
    with pytest.raises(DataFormatError, match=rf"{reader}\.txt:2: not valid UTF-8"):
        read(path)


def _broken_gzip(path: Path, kind: str, text: str) -> Path:
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(512))
    else:  # a real gzip stream cut in the middle
        data = gzip.compress(text.encode() * 2000, compresslevel=0, mtime=0)
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("kind", ["random bytes", "truncated"])
@pytest.mark.parametrize("reader", READERS)
def test_a_broken_gz_file_is_an_error_naming_it(tmp_path, reader, kind):
    read, good, _ = READERS[reader]
    text = CONLLU_SENTENCE if reader == "conllu" else good
    path = _broken_gzip(tmp_path / f"{reader}.txt.gz", kind, text)
    with pytest.raises(DataFormatError, match=rf"{reader}\.txt\.gz: not gzip data") as caught:
        read(path)
    assert caught.value.path == path
    if kind == "truncated":
        assert "breaks off after line " in str(caught.value)


@pytest.mark.parametrize("kind", ["random bytes", "truncated"])
def test_a_broken_ewt_gz_file_of_nmt_aux_is_an_error_naming_it(tmp_path, kind):
    folder = tmp_path / "ud" / "UD_English-EWT"
    _write(folder / "en_ewt-ud-train.conllu.gz", CONLLU_SENTENCE)
    _broken_gzip(folder / "en_ewt-ud-dev.conllu.gz", kind, CONLLU_SENTENCE)
    _write(folder / "en_ewt-ud-test.conllu.gz", CONLLU_SENTENCE)
    with pytest.raises(DataFormatError, match=r"en_ewt-ud-dev\.conllu\.gz: not gzip data"):
        ewt_seq2seq_columns(tmp_path)


def test_list_benchmarks_names_a_malformed_file_in_one_line(tmp_path, capsys):
    _write(tmp_path / "fdu_mtl" / "books.task.train", "1\tgood\nno tab here\n")
    with pytest.raises(SystemExit) as caught:
        main(["list", "benchmarks", "--data-dir", str(tmp_path)])
    message = str(caught.value.code)
    train = tmp_path / "fdu_mtl" / "books.task.train"
    assert (
        message == f"mtl-sched list: cannot read fdu-mtl: {train}:2: expected 'label<TAB>text'"
        " (no tab found)"
    )
    out = capsys.readouterr().out
    assert out.startswith("synthetic:") and "Traceback" not in out
    assert f"\nfdu-mtl: data unreadable ({train}:2: " in out
    assert "\ntagging: data unavailable (" in out


# --------------------------------------------------------------------- broken agent files
def _broken_agent(path: Path, kind: str) -> Path:
    import zipfile

    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(256))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            if kind == "random files":
                archive.writestr("notes.txt", "hello")
                archive.writestr("blob.bin", np.random.default_rng(0).bytes(64))
    return path


AGENT_KINDS = ["random bytes", "empty zip", "random files"]


@pytest.mark.parametrize("kind", AGENT_KINDS)
def test_qls_names_an_agent_file_without_agent_data(tmp_path, kind):
    from mtl_sched.agents.qls import QLSScheduler

    path = _broken_agent(tmp_path / "agent.zip", kind)
    with pytest.raises(ValueError, match=rf"^{path}: not a saved agent \("):
        QLSScheduler(path)
    with pytest.raises(FileNotFoundError, match=r"agent file .*missing\.zip does not exist"):
        QLSScheduler(tmp_path / "missing.zip")


@pytest.mark.parametrize("kind", AGENT_KINDS)
def test_run_names_an_agent_file_without_agent_data_in_one_line(tmp_path, kind):
    path = _broken_agent(tmp_path / "agent.zip", kind)
    argv = ["run", "--benchmark", "synthetic", "--small", "--scheduler", "qls"]
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--agent", str(path)])
    message = str(caught.value.code)
    assert message.startswith(f"mtl-sched run: {path}: not a saved agent (")
    assert "\n" not in message
