"""`skyscript-db captions`: captions beyond the rule ones (a language model's rewrites)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from skyscript_db.cli.common import DbOption, progress_bars, say
from skyscript_db.config import DEFAULT_REWRITE_PROMPT, Options, RewriteConfig
from skyscript_db.db import DEFAULT_DB
from skyscript_db.errors import InputError
from skyscript_db.etl import pipeline

app = typer.Typer(help="Captions beyond the rule ones: a language model's rewrites.",
                  no_args_is_help=True)


@app.command("rewrite")
def rewrite(
    endpoint: Annotated[str, typer.Option(help="OpenAI-compatible API base URL, e.g. "
                                               "http://localhost:11434/v1 (Ollama).")],
    model: Annotated[str, typer.Option(help="Model to ask; its rewrites are stored under "
                                            "this name.")],
    db: DbOption = DEFAULT_DB,
    prompt_file: Annotated[Optional[Path], typer.Option(
        help="Prompt template with {tags}, {names}, {caption}, {gsd} (default: built in).")]
    = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    limit: Annotated[Optional[int], typer.Option(help="At most this many pairs this run.")]
    = None,
    token_budget: Annotated[Optional[int], typer.Option(
        help="Stop sending once this many tokens were used.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Tokens per answer at most.")] = 120,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key.")]
    = "OPENAI_API_KEY",
) -> None:
    """Rewrite each pair's caption with a language model; a rerun sends only what is missing."""
    prompt = DEFAULT_REWRITE_PROMPT
    if prompt_file is not None:
        try:
            prompt = prompt_file.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"{prompt_file}: cannot read the prompt file ({e.strerror})") from e
    config = RewriteConfig(endpoint, model, prompt, concurrency, limit, token_budget, max_tokens,
                           api_key_env=api_key_env)
    with progress_bars() as progress:
        result = pipeline.run(db, Options(rewrite=config), ["rewrite_captions"],
                              only="rewrite_captions", on_progress=progress)["rewrite_captions"]
    info = result.info
    stopped = " (stopped by the token budget)" if info["stopped_by"] else ""
    say(f"{db}: {info['rewritten']:,} captions rewritten by {model}, {info['failed']:,} failed, "
        f"{info['tokens']:,} tokens{stopped}; {info['rows_out']:,} in all")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="captions")
