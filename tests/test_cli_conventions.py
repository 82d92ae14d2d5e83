"""Command-line conventions: --version, the key listings, unknown keys, list values, and every
documented example command line checked against the real parser and key checks."""

import dataclasses
import re
from collections.abc import Sequence

import pytest
from documentation_pages import documentation_pages

import mtl_sched
import mtl_sched.cli.run
from mtl_sched.agents.settings import AgentSettings
from mtl_sched.cli import build_parser, main
from mtl_sched.cli.examples import (
    ExampleError,
    check_command_line,
    help_examples,
    markdown_examples,
)
from mtl_sched.cli.keys import docstring_params, first_sentence
from mtl_sched.registry import coerce_hyperparameters
from mtl_sched.script_args import UnknownKeyError, coerce_value, parse_key_value


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"mtl-sched {mtl_sched.__version__}"


def test_list_settings_shows_each_setting_with_type_default_and_help(capsys):
    assert main(["list", "settings"]) == 0
    out = capsys.readouterr().out
    assert f"  gamma (float; default {AgentSettings.gamma!r})\n      discount factor\n" in out
    assert "  observation (one of 'histogram', 'task-features'; default 'task-features')" in out
    listed = [line.split(" (")[0].strip() for line in out.splitlines() if line[2:3] != " "]
    assert listed[1:] == [f.name for f in dataclasses.fields(AgentSettings)]


def test_list_options_reads_the_factory_signature_and_docstring(capsys):
    assert main(["list", "options", "synthetic"]) == 0
    out = capsys.readouterr().out
    # the first sentence ends at the semicolon outside the parentheses only
    assert (
        "  budget (int or None; default None)\n      training examples per run (default 9600;"
        in out
    )
    assert "  batch_size (int; default 32)\n      examples per minibatch\n" in out
    assert "  probe_measure (one of 'margin', 'least_confidence', 'entropy'; default the " in out


def test_list_params_shows_a_schedulers_hyperparameters(capsys):
    assert main(["list", "params", "round-robin"]) == 0
    out = capsys.readouterr().out
    assert "  tasks (Sequence[str] or None; default None)\n" in out
    assert "      names of the tasks to cycle through, in this order\n" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "options"], "give the benchmark: mtl-sched list options BENCHMARK"),
        (["list", "params", "nope"], "unknown scheduler 'nope'; known schedulers: .*uniform"),
        (["list", "options", "nope"], "unknown benchmark 'nope'; known benchmarks: synthetic,"),
        (["list", "settings", "gamma"], "'list settings' takes no name"),
    ],
)
def test_list_refuses_a_missing_or_unknown_name(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


def test_docstring_params_join_continuation_lines_and_drop_backquotes():
    def factory(size: int, mode: str) -> None:
        """Build it.

        :param size: examples per task (``None``: all of
            them); see `other`.
        :param mode: ``"a"`` or ``"b"``.
        :raises ValueError: never.
        """

    helps = docstring_params(factory)
    assert helps == {
        "size": "examples per task (None: all of them); see other.",
        "mode": '"a" or "b".',
    }
    assert first_sentence(helps["size"]) == "examples per task (None: all of them)"


RUN = ["run", "--benchmark", "synthetic", "--small", "--no-tensorboard", "--scheduler"]
COMPARE = ["compare", "--benchmark", "synthetic", "--schedulers"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [*RUN, "uniform", "--option", "budgt=100"],
            "benchmark 'synthetic' has no option 'budgt' \\(did you mean 'budget'\\?\\); its "
            "options: budget, batch_size, .*probe_pool.* \\(see 'mtl-sched list options "
            "synthetic'\\)",
        ),
        ([*RUN, "uniform", "--option", "batch_size=big"], "'batch_size' expects int; got 'big'"),
        (
            [*RUN, "round-robin", "--param", "task=easy"],
            "scheduler 'round-robin' has no hyperparameter 'task' \\(did you mean 'tasks'\\?\\)"
            "; its hyperparameters: tasks \\(see 'mtl-sched list params round-robin'\\)",
        ),
        ([*RUN, "round-robin", "--param", "tasks=1,2"], "'tasks' expects Sequence\\[str\\]"),
        (
            [*COMPARE, "greedy", "--param", "greedy.window=4"],
            "scheduler 'greedy' has no hyperparameter 'window'; its hyperparameters: none",
        ),
        (
            [*COMPARE, "uniform", "--option", "probe_pol=4"],
            "has no option 'probe_pol' \\(did you mean 'probe_pool'\\?\\)",
        ),
    ],
)
def test_unknown_keys_and_bad_values_end_in_one_line_naming_the_valid_keys(argv, message):
    with pytest.raises(SystemExit, match=message) as exit_:
        main(argv)
    assert "\n" not in str(exit_.value.code)


def test_train_agent_names_the_valid_settings_and_value_types(tmp_path):
    out = ["--out", str(tmp_path / "agent"), "--steps", "5"]
    with pytest.raises(SystemExit, match="has no setting 'gama' \\(did you mean 'gamma'"):
        main(["train-agent", *out, "--setting", "gama=0.5"])
    with pytest.raises(SystemExit, match="agent setting 'gamma' expects float; got 'high'"):
        main(["train-agent", *out, "--setting", "gamma=high"])
    with pytest.raises(SystemExit, match="benchmark 'synthetic' has no option 'size'"):
        main(["train-agent", *out, "--option", "size=3"])
    assert not (tmp_path / "agent").exists()


def test_an_unknown_key_is_a_value_error_that_old_type_error_handlers_still_catch():
    with pytest.raises(UnknownKeyError) as caught:
        coerce_hyperparameters("gradnorm", {"beta": 1})
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)


def test_list_values_are_split_on_commas_only_for_list_typed_parameters():
    assert coerce_hyperparameters("round-robin", {"tasks": "easy,medium, hard"}) == {
        "tasks": ("easy", "medium", "hard")
    }
    assert coerce_hyperparameters("round-robin", {"tasks": "easy"}) == {"tasks": ("easy",)}
    # JSON and Python lists keep working
    for text in ('tasks=["easy", "hard"]', "tasks=['easy', 'hard']"):
        key, value = parse_key_value(text)
        assert coerce_hyperparameters("round-robin", {key: value}) == {"tasks": ("easy", "hard")}
    # a string parameter keeps its commas
    assert coerce_value("a,b", str) == "a,b"
    assert coerce_value("a,b", str | Sequence[str]) == "a,b"
    assert coerce_value("a,b", Sequence[str] | str) == ("a", "b")
    # numbers: literals already, one number is a one-item list, items are checked
    assert coerce_value(parse_key_value("net_arch=64,32")[1], tuple[int, ...]) == (64, 32)
    assert coerce_value(64, tuple[int, ...]) == (64,)
    assert coerce_value("1,2", list[float]) == [1.0, 2.0]
    with pytest.raises(TypeError, match="expects list\\[int\\]; got '1,x'"):
        coerce_value("1,x", list[int])
    assert parse_key_value("flag=true") == ("flag", True)
    assert parse_key_value("limit=null") == ("limit", None)


def test_a_comma_separated_param_reaches_the_scheduler(capsys):
    argv = [*RUN, "round-robin", "--budget", "320", "--param", "tasks=easy,hard"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # round-robin over two of four tasks: half of the examples each, none for the others
    shares = re.search(r"\nround-robin .*± \S+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s", out)
    assert shares is not None and shares.groups() == ("0.50", "0.00", "0.50", "0.00")


def _all_examples() -> list[tuple[str, list[str]]]:
    examples = help_examples(build_parser())
    for page, path in documentation_pages().items():
        if path.exists():
            examples += markdown_examples(path.read_text(encoding="utf-8"), page)
    return examples


EXAMPLES = _all_examples()


def test_the_examples_cover_every_command_the_readme_and_the_docs():
    places = {where.split(" (")[0] for where, _ in EXAMPLES}
    for command in ("demo", "train-agent", "list", "run", "compare"):
        assert f"mtl-sched {command} --help" in places
    pages = {place.split(":")[0] for place in places}
    assert pages >= {
        "README.md",
        "docs/getting-started.md",
        "docs/guide/train-agent.md",
        "docs/guide/compare.md",
        "docs/guide/plug-in.md",
        "docs/studies.md",
        "docs/results/real-data.md",
    }


@pytest.mark.parametrize(("where", "argv"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_every_documented_example_is_accepted(where, argv):
    check_command_line(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runn", "--benchmark", "synthetic"], "invalid choice: 'runn'"),
        (["run", "--benchmark", "synthetic", "--schedulr", "uniform"], "unrecognized arguments"),
        (["run", "--benchmark", "synthetic", "--scheduler", "nope"], "unknown scheduler 'nope'"),
        (["run", "--benchmark", "nope", "--scheduler", "uniform"], "unknown benchmark 'nope'"),
        (
            [*COMPARE, "greedy", "--param", "greedy.window=4"],
            "has no hyperparameter 'window'",
        ),
        (
            [*COMPARE, "uniform", "--param", "greedy.window=4"],
            "--param sets greedy, which --schedulers does not name",
        ),
        (["train-agent", "--out", "x", "--setting", "gama=1"], "has no setting 'gama'"),
        (["train-agent", "--out", "x", "--option", "hidden=3"], "has no option 'hidden'"),
        (
            ["train-agent", "--out", "x", "--setting", "observation=histogram"],
            "'task-shared' scores per-task rows",
        ),
        (["train-agent", "--out", "x", "--task-subsets", "5-3"], "--task-subsets must be LO-HI"),
        (["run", "--benchmark", "synthetic", "--single-task", "--param", "a=1"], "--param sets"),
        (["list", "params"], "give the scheduler"),
    ],
)
def test_a_wrong_example_is_caught(argv, message):
    with pytest.raises(ExampleError, match=message):
        check_command_line(argv)


def test_examples_of_an_unimportable_plugin_check_flags_but_not_its_names():
    check_command_line(["--import", "no_such_module_x", "run", "--benchmark", "mine"])
    with pytest.raises(ExampleError, match="unrecognized arguments"):
        check_command_line(["--import", "no_such_module_x", "run", "--benchmark", "m", "--x"])


def test_a_wrong_example_in_a_commands_help_is_found(monkeypatch):
    bad = "mtl-sched run --benchmark synthetic --scheduler greedy --param window=4"
    monkeypatch.setattr(mtl_sched.cli.run, "EXAMPLES", (*mtl_sched.cli.run.EXAMPLES, bad))
    found = [argv for where, argv in help_examples(build_parser()) if "window=4" in argv]
    assert found == [bad.split()[1:]]
    with pytest.raises(ExampleError, match="scheduler 'greedy' has no hyperparameter 'window'"):
        check_command_line(found[0])


def test_markdown_examples_join_lines_and_honour_exported_imports():
    text = "\n".join(
        [
            "mtl-sched run --benchmark outside --scheduler uniform",
            "## Use",
            "```bash",
            "OMP_NUM_THREADS=1 mtl-sched compare --benchmark synthetic \\",
            "    --schedulers uniform --seeds 0,1   # a comment",
            "pip install tensorboard",
            "export MTL_SCHED_IMPORT=my_tasks",
            "$ mtl-sched list benchmarks",
            "```",
            "```",
            "mtl-sched run --benchmark synthetic --scheduler greedy --param window=4",
            "```",
        ]
    )
    assert markdown_examples(text, "doc.md") == [
        (
            "doc.md:4 (Use)",
            ["compare", "--benchmark", "synthetic", "--schedulers", "uniform", "--seeds", "0,1"],
        ),
        ("doc.md:8 (Use)", ["--import", "my_tasks", "list", "benchmarks"]),
        (
            "doc.md:11 (Use)",
            ["run", "--benchmark", "synthetic", "--scheduler", "greedy", "--param", "window=4"],
        ),
    ]
    with pytest.raises(ExampleError, match="has no hyperparameter 'window'"):
        check_command_line(markdown_examples(text)[-1][1])


def test_markdown_examples_read_shell_blocks_only():
    text = "\n".join(
        [
            "# Page",
            "```python",
            "print('it's not a command')  # mtl-sched run --benchmark nope",
            "```",
            "```",
            "scheduler   it's an output table",
            "uniform     0.5",
            "```",
            "```mermaid",
            "mtl-sched --> sweeps",
            "```",
            "- a list item:",
            "",
            "  ```console",
            "  $ python -m mtl_sched list schedulers",
            "  uniform  (it's output)",
            "  $ cd runs && MTL_SCHED_IMPORT=a,b mtl-sched run --benchmark mine; ls",
            "  ```",
            "```sh",
            'echo "it\'s fine"',
            "mtl-sched report --db r.sqlite \\",
            "    --out report/",
            "```",
        ]
    )
    assert markdown_examples(text, "doc.md") == [
        ("doc.md:15 (Page)", ["list", "schedulers"]),
        ("doc.md:17 (Page)", ["--import", "a", "--import", "b", "run", "--benchmark", "mine"]),
        ("doc.md:21 (Page)", ["report", "--db", "r.sqlite", "--out", "report/"]),
    ]
    with pytest.raises(ExampleError, match=r"doc\.md:2: No closing quotation"):
        markdown_examples("```bash\nmtl-sched run --option 'tasks=a\n```\n", "doc.md")
    with pytest.raises(ValueError, match="line 1 is never closed"):
        markdown_examples("```bash\nmtl-sched list schedulers\n", "doc.md")


def test_a_wrong_command_line_in_a_docs_page_is_caught(tmp_path):
    page = (
        "## Compare\n\n```bash\nmtl-sched compare --benchmark synthetic --schedulers uniform \\\n"
    )
    page += "    --seeds 0,1,2 ...\n```\n"
    ((where, argv),) = markdown_examples(page, "docs/guide/compare.md")
    assert where == "docs/guide/compare.md:4 (Compare)"
    with pytest.raises(ExampleError, match=re.escape("unrecognized arguments: ...")):
        check_command_line(argv)


def test_every_command_help_names_the_listings():
    parser = build_parser()
    helps = [parser.format_help()]
    helps += [command.format_help() for command in _commands(parser)]
    assert len(helps) >= 10
    for text in helps:
        assert "'mtl-sched list options BENCHMARK' (--option keys)" in text


def _commands(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield command
                yield from _commands(command)
