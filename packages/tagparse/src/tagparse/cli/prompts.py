"""`tagparse prompts`: list, show and render the versioned LLM prompt templates."""

from __future__ import annotations

import json

import click

from tagparse.cli.command import Group
from tagparse.errors import TagparseError
from tagparse.llm.models import chat_format_for, resolve_model
from tagparse.prompts import DEFAULT_PROMPT, list_prompts, load_prompt


@click.group(cls=Group)
def prompts() -> None:
    """The LLM prompt templates (their id + content hash are part of the parser fingerprint)."""


@prompts.command("list")
def list_cmd() -> None:
    """Shipped prompt ids with their content hash and number of few-shot examples."""
    for prompt_id in list_prompts():
        p = load_prompt(prompt_id)
        default = "  (default)" if prompt_id == DEFAULT_PROMPT else ""
        click.echo(f"{p.id}  hash {p.hash}  {len(p.examples)} examples{default}  {p.description}")


@prompts.command()
@click.argument("prompt_id")
def show(prompt_id: str) -> None:
    """Print a template: instruction, few-shot examples and output schema."""
    p = load_prompt(prompt_id)
    click.echo(f"# {p.id}  hash {p.hash}\n# {p.description}\n")
    click.echo(f"[system]\n{p.system}\n")
    click.echo(f"[user template]\n{p.user_template}\n")
    click.echo("[examples]")
    for ex in p.examples:
        click.echo(
            f"  {ex['caption']}\n    objects: {', '.join(ex['objects'])}"
            f"\n    attributes: {', '.join(ex['attributes'])}"
        )
    click.echo(f"\n[output schema]\n{json.dumps(p.schema, indent=2)}")


@prompts.command()
@click.argument("caption")
@click.option(
    "--prompt", "prompt_id", default=DEFAULT_PROMPT, show_default=True, help="template id"
)
@click.option(
    "--model",
    default=None,
    help="model or alias; models without a chat template (vicuna-*) render as text",
)
@click.option("--json", "as_json", is_flag=True, help="print the chat messages as JSON")
def render(caption: str, prompt_id: str, model: str | None, as_json: bool) -> None:
    """Show exactly what the LLM receives for CAPTION."""
    messages = load_prompt(prompt_id).messages(caption)
    fmt = chat_format_for(model) if model else None
    if as_json:
        click.echo(json.dumps(messages, indent=2, ensure_ascii=False))
    elif fmt is not None:
        click.echo(f"# {resolve_model(model)}: {fmt.name} conversation format")
        click.echo(fmt.render(messages))
    else:
        for m in messages:
            click.echo(f"[{m['role']}]\n{m['content']}\n")


@prompts.command("chat-template")
@click.argument("model")
def chat_template(model: str) -> None:
    """Print the Jinja chat template for MODEL (for `vllm serve --chat-template FILE`)."""
    fmt = chat_format_for(model)
    if fmt is None:
        raise TagparseError(
            f"{model!r} needs no chat template from tagparse; its tokenizer has one"
        )
    click.echo(fmt.jinja_template())
