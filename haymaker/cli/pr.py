"""`haymaker pr`: what a pull request changes in the runs, as its comment shows it.

Its own command rather than `plan --pr`: `plan` plans one run (a size or names, a run id), while this
compares two revisions over every run they allow; none of plan's flags would mean anything here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from haymaker.cli.common import emit_json, err, out
from haymaker.errors import InvalidInput, Refused


def pr(
    base: str = typer.Option(..., "--base", help="Git revision the pull request is compared with, such as "
                                                 "origin/main (in Actions: HEAD^1)."),
    markdown_file: Optional[Path] = typer.Option(None, "--markdown", help="Also write the PR comment here."),
    as_json: bool = typer.Option(False, "--json", help="Write one JSON document to stdout."),
) -> None:
    """Show what this change does to every scheduled and dispatched run; exit 1 or 2 when one would fail."""
    from haymaker.gcpause import paused_gc

    with paused_gc():
        from haymaker.pr import review
        from haymaker.prcomment import markdown

        result = review(base)
    text = markdown(result)
    if markdown_file is not None:
        try:
            markdown_file.write_text(text)
        except OSError as e:
            raise InvalidInput(f"cannot write {markdown_file}: {e.strerror or e}: name a writable file") from None
    if as_json:
        emit_json(result.as_dict())
    else:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
    if as_json or markdown_file is not None:
        for p in result.warnings:
            err.print(f"warning: {p.line()}", markup=False, highlight=False)
    if result.ok:
        return
    if as_json or markdown_file is not None:  # else the comment on stdout lists them
        for p in result.problems:
            err.print(p.line(), markup=False, highlight=False)
    summary = f"{len(result.problems)} problem(s) would make a scheduled or dispatched run fail"
    if any(p.subject.startswith(("scenarios/", "Pulumi.")) for p in result.problems):
        raise InvalidInput(f"{summary}: a file does not load: fix it, then run `haymaker pr` again")
    raise Refused(f"{summary}: fix them, then run `haymaker pr` again")
