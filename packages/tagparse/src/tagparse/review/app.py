"""The Textual review app: one sample per screen, tags as chips, verdicts written as you type.

All state lives in `ReviewSession`; this module only renders it and maps keys and clicks to its
methods. Images load in a worker thread so a slow disk never delays the next sample.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from tagparse.review.images import ImageSource, ImageUnavailable, render_halfblocks
from tagparse.review.samples import ParserTags, SampleView, Tag
from tagparse.review.session import ReviewSession
from tagparse.review.stats import format_rate

CHIP_LOOK = {  # latest verdict -> (symbol, style)
    None: ("·", "#e0e0e0 on #3a3a3a"),
    "accept": ("✓", "bold #000000 on #5faf5f"),
    "reject": ("✗", "strike #ffffff on #af2020"),
    "add": ("+", "bold #000000 on #5fafd7"),
}
# Blank but not whitespace (U+2800), so line wrapping never splits a chip (no-break spaces count as
# whitespace to Textual's wrapper).
BLANK = "\u2800"
CAPTION_STYLE = {"object": "bold green", "attribute": "bold magenta"}


def chip(index: int, tag: Tag, verdict: str | None, *, cursor: bool, disputed: bool) -> str:
    """Markup of one clickable chip; clicking it runs `toggle_chip(index)`."""
    symbol, style = CHIP_LOOK.get(verdict, CHIP_LOOK[None])
    if cursor:
        style += " reverse"
    mark = "[bold #ffff00]≠[/]" if disputed else BLANK
    label = escape(tag[1]).replace(" ", BLANK)
    return f"[@click=app.toggle_chip({index})][{style}]{BLANK}{symbol}{BLANK}{label}{mark}[/][/]"


def highlight_caption(
    caption: str, tags: list[Tag], rejected: set[Tag], current: Tag | None
) -> Text:
    """The caption with each word a tag came from coloured by kind (`dog` also marks `dogs`)."""
    text = Text(caption)
    for tag in tags:
        if tag in rejected or not tag[1].strip():
            continue
        words = [re.escape(w) for w in tag[1].split()]
        pattern = r"\b" + r"\w*\W+".join(words) + r"\w*"
        style = CAPTION_STYLE[tag[0]] + (" reverse" if tag == current else "")
        for m in re.finditer(pattern, caption, flags=re.IGNORECASE):
            text.stylize(style, m.start(), m.end())
    return text


class TagPrompt(ModalScreen[str | None]):
    """A one-line input with completion from the vocabulary (add a tag, filter by a tag)."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, title: str, hint: str, suggestions: list[str]):
        super().__init__()
        self.title_text, self.hint, self.suggestions = title, hint, suggestions

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Static(self.title_text, id="prompt-title")
            yield Input(
                placeholder="tag", suggester=SuggestFromList(self.suggestions, case_sensitive=False)
            )
            yield Static(self.hint, id="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class HelpScreen(ModalScreen[None]):
    """Every key of the review, generated from the app's bindings."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape,question_mark,q", "dismiss(None)", "close")
    ]

    def compose(self) -> ComposeResult:
        rows = []
        for binding in ReviewApp.BINDINGS:
            keys = " / ".join(
                self.app.get_key_display(Binding(k, "")) for k in binding.key.split(",")
            )
            rows.append(
                f"[bold]{escape(keys):>16}[/]  {escape(binding.tooltip or binding.description)}"
            )
        mouse = "click a chip to toggle it (reject ↔ accept); click an added chip to remove it"
        with Vertical(id="help"):
            yield Static(
                "[b]tagparse review — keys[/b]\n\n" + "\n".join(rows) + f"\n\n{mouse}\n\n"
                "[dim]escape or ? closes this help[/dim]"
            )


class ImagePanel(Static):
    """The sample's picture in half-block characters, or the reason there is none."""

    def __init__(self, source: ImageSource, **kwargs):
        super().__init__("", **kwargs)
        self.source = source
        self.key: str | None = None
        self.image = None

    def show(self, key: str) -> None:
        if key == self.key:
            return
        self.key, self.image = key, None
        self.update(Text(f"loading {key} …", style="dim"))
        self.load(key)

    @work(thread=True, exclusive=True, group="image")
    def load(self, key: str) -> None:
        """Decode off the UI thread, shrunk to at most 512 px so redraws on resize stay cheap."""
        image, reason = None, ""
        try:
            image = self.source.load(key)
            image.thumbnail((512, 512))
        except ImageUnavailable as e:
            reason = str(e)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._loaded, key, image, reason)

    def _loaded(self, key: str, image, reason: str) -> None:
        if key != self.key:
            return
        if image is None:
            self.update(Text(f"[no image]\n\n{reason}", style="yellow"))
        else:
            self.image = image
            self._render_image()

    def _render_image(self) -> None:
        width, height = self.content_size
        if self.image is not None and width > 0 and height > 0:
            self.update(render_halfblocks(self.image, width, height))

    def on_resize(self) -> None:
        self._render_image()


class ReviewApp(App[None]):
    """`tagparse review`: accept or reject each tag of a sample, add the missing ones."""

    TITLE = "tagparse review"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    CSS = """
    #progress { height: auto; background: $boost; padding: 0 1; }
    #body { height: 1fr; }
    #text { width: 1fr; padding: 0 1; }
    #image { width: 42%; min-width: 16; height: 1fr; border-left: solid $primary; padding: 0 1; }
    #key { text-style: bold; }
    #caption-box { height: auto; max-height: 8; border: round $primary-darken-2; }
    #parsers { height: auto; }
    .parser, #added {
        link-style: none; link-style-hover: bold; link-color: initial; link-background: initial;
    }
    .parser { width: 1fr; height: auto; border: round $secondary; padding: 0 1; }
    #added, #message { height: auto; }
    #message { color: $warning; }
    #empty { width: 1fr; height: 1fr; content-align: center middle; text-align: center; }
    #prompt, #help {
        width: 70; max-width: 95%; height: auto;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    TagPrompt, HelpScreen { align: center middle; }
    .-narrow #image { width: 34%; }
    """
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("right,l", "move(1)", "tag →", tooltip="next tag"),
        Binding("left,h", "move(-1)", "tag ←", show=False, tooltip="previous tag"),
        Binding("space", "toggle", "toggle", tooltip="toggle the tag: reject ↔ accept"),
        Binding("a", "verdict('accept')", "accept", tooltip="accept the tag"),
        Binding("r,x", "verdict('reject')", "reject", tooltip="reject the tag"),
        Binding("plus,t", "add_tag", "add", tooltip="add a missing tag (a:red for an attribute)"),
        Binding(
            "A",
            "accept_all",
            "all ✓ + next",
            tooltip="accept every unjudged tag, go to the next sample",
        ),
        Binding("down,s,j", "step(1)", "skip", tooltip="skip to the next sample (no verdict)"),
        Binding("up,k", "step(-1)", "back", show=False, tooltip="previous sample"),
        Binding("n", "next_unreviewed", "unreviewed", tooltip="jump to the next unreviewed sample"),
        Binding("u", "undo", "undo", tooltip="undo the latest action"),
        Binding("slash", "filter", "filter", tooltip="only samples with a tag (empty: all)"),
        Binding("question_mark", "help", "help", tooltip="this help"),
        Binding("q", "quit", "quit", tooltip="quit (every verdict is already saved)"),
    ]

    def __init__(self, session: ReviewSession, images: ImageSource | None = None):
        super().__init__()
        self.session = session
        self.images = images
        self.cursor = 0
        self.message = ""

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="progress")
        if self.session.empty:
            name = self.session.path.name
            yield Static(
                f"{escape(name)} has no samples yet.\n\n"
                "Run [b]tagparse run --backend spacy --input "
                f"captions.csv --db {escape(name)}[/b] first, then [b]tagparse review[/b] again.",
                id="empty",
            )
        else:
            with Horizontal(id="body"):
                with VerticalScroll(id="text"):
                    yield Static(id="key")
                    with VerticalScroll(id="caption-box"):
                        yield Static(id="caption")
                    with Horizontal(id="parsers"):
                        for pid in self.session.parsers:
                            yield Static(id=f"parser-{pid}", classes="parser")
                    yield Static(id="added")
                    yield Static(id="message")
                if self.images is not None:
                    yield ImagePanel(self.images, id="image")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_view()

    def on_unmount(self) -> None:
        self.session.close()

    # -- rendering -------------------------------------------------------------------------------
    def refresh_view(self) -> None:
        self.query_one("#progress", Static).update(self.progress_text())
        sample = self.session.current
        if sample is None:
            return
        chips = sample.chips()
        self.cursor = min(self.cursor, max(len(chips) - 1, 0))
        current = chips[self.cursor] if chips else None
        reviewed = "reviewed" if sample.id in self.session.reviewed else "not reviewed"
        self.query_one("#key", Static).update(f"{escape(sample.key)}  [dim]({reviewed})[/dim]")
        rejected = {t for t, v in sample.verdicts.items() if v == "reject"}
        self.query_one("#caption", Static).update(
            highlight_caption(sample.caption, chips, rejected, current)
        )
        disputed = sample.disputed()
        shown = {p.parser_id: p for p in sample.parses}
        for pid in self.session.parsers:
            column = self.query_one(f"#parser-{pid}", Static)
            column.display = pid in shown
            if pid in shown:
                column.update(self.parser_column(shown[pid], sample, chips, disputed))
        added = sample.added_tags()
        self.query_one("#added", Static).update(
            "added: " + " ".join(self.chip_markup(sample, chips, t, disputed=False) for t in added)
            if added
            else ("" if chips else "[dim]no tags — press + to add what the image shows[/dim]")
        )
        self.query_one("#message", Static).update(escape(self.message))
        if self.images is not None:
            self.query_one(ImagePanel).show(sample.key)

    def chip_markup(self, sample: SampleView, chips: list[Tag], tag: Tag, *, disputed: bool) -> str:
        i = chips.index(tag)
        return chip(i, tag, sample.verdicts.get(tag), cursor=i == self.cursor, disputed=disputed)

    def parser_column(
        self, parse: ParserTags, sample: SampleView, chips: list[Tag], disputed: set[Tag]
    ) -> str:
        head = f"[b]{escape(parse.label)}[/b]"
        if parse.status != "ok":
            return f"{head}\n[red]parse failed:[/red] {escape(parse.error or 'no error message')}"
        mine = [t for t in parse.tags if t in disputed]
        if mine:
            head += f" [yellow]≠{len(mine)}[/yellow]"
        lines = [head]
        for kind, title in (("object", "objects"), ("attribute", "attributes")):
            tags = [t for t in parse.tags if t[0] == kind]
            body = " ".join(
                self.chip_markup(sample, chips, t, disputed=t in disputed) for t in tags
            )
            lines.append(f"[dim]{title}:[/dim] {body or '[dim]none[/dim]'}")
        return "\n".join(lines)

    def progress_text(self) -> str:
        s = self.session
        if s.empty:
            return "[b]tagparse review[/b]"
        where = f"sample {s.pos + 1:,} of {len(s.order):,} · order {s.order_name} (seed {s.seed})"
        if s.tag_filter:
            where += f" · filter [b]{escape(s.tag_filter)}[/b]"
        lines = [f"[b]reviewed {len(s.reviewed):,}/{s.target:,}[/b] · {where}"]
        lines += [
            f"{escape(score.label)} precision {format_rate(score.precision)}" for score in s.scores
        ]
        return "\n".join(lines)

    def say(self, message: str) -> None:
        self.message = message
        self.refresh_view()

    # -- actions ---------------------------------------------------------------------------------
    def _chips(self) -> list[Tag]:
        return self.session.current.chips() if self.session.current else []

    def action_move(self, delta: int) -> None:
        chips = self._chips()
        if chips:
            self.cursor = (self.cursor + delta) % len(chips)
            self.say("")

    def _judge(self, index: int, verdict: str) -> None:
        chips = self._chips()
        if not chips:
            self.say("no tag to judge here; press + to add one")
            return
        self.cursor = index
        tag = chips[index]
        self.session.record([self.session.verdict_for(tag, verdict)])
        self.say(
            f"{verdict}ed {tag[0]} '{tag[1]}'"
            if verdict != "reject"
            else f"rejected {tag[0]} '{tag[1]}'"
        )

    def action_verdict(self, verdict: str) -> None:
        self._judge(self.cursor, verdict)

    def action_toggle(self) -> None:
        self.action_toggle_chip(self.cursor)

    def action_toggle_chip(self, index: int) -> None:
        """Unjudged or accepted -> reject; rejected -> accept; an added tag is removed (reject)."""
        chips = self._chips()
        if not chips or index >= len(chips):
            return
        sample = self.session.current
        verdict = sample.verdicts.get(chips[index])
        added = chips[index] in sample.added_tags()
        self._judge(index, "accept" if verdict == "reject" and not added else "reject")

    def action_accept_all(self) -> None:
        sample = self.session.current
        if sample is None:
            return
        todo = [t for t in sample.parsed_tags() if t not in sample.verdicts]
        self.session.record([self.session.verdict_for(t, "accept") for t in todo])
        self.cursor = 0
        self._step(1, f"accepted {len(todo)} tag(s) of {sample.key}")

    def action_step(self, delta: int) -> None:
        self.cursor = 0
        self._step(delta, "")

    def _step(self, delta: int, message: str) -> None:
        s = self.session
        if s.empty:
            return
        if not 0 <= s.pos + delta < len(s.order):
            self.say(
                (message + " · " if message else "")
                + ("end" if delta > 0 else "start")
                + " of the order"
            )
            return
        s.goto(s.pos + delta)
        self.say(message)

    def action_next_unreviewed(self) -> None:
        s = self.session
        if s.empty:
            return
        pos = s.first_unreviewed((s.pos + 1) % len(s.order))
        if pos is None:
            self.say("every sample in this order is reviewed")
            return
        self.cursor = 0
        s.goto(pos)
        self.say("")

    def action_undo(self) -> None:
        sid = self.session.undo()
        self.say("nothing to undo" if sid is None else f"undid the latest action on sample #{sid}")

    def action_add_tag(self) -> None:
        s = self.session
        if s.empty:
            return
        hint = "enter adds · escape cancels · objects unless prefixed a: (attribute)"
        suggestions = list(dict.fromkeys(s.vocab["object"] + s.vocab["attribute"]))
        self.push_screen(TagPrompt("add a missing tag", hint, suggestions), self._add_tag)

    def _add_tag(self, text: str | None) -> None:
        if not text or not text.strip():
            return
        tag = self.session.tag_kind(text)
        if not tag[1]:
            return
        self.session.record([self.session.verdict_for(tag, "add")])
        chips = self._chips()
        self.cursor = chips.index(tag) if tag in chips else self.cursor
        note = (
            "" if self.session.in_vocab(tag) else " (not in the vocabulary: labels will not use it)"
        )
        self.say(f"added {tag[0]} '{tag[1]}'{note}")

    def action_filter(self) -> None:
        s = self.session
        if s.empty:
            return
        suggestions = list(dict.fromkeys(s.vocab["object"] + s.vocab["attribute"]))
        self.push_screen(
            TagPrompt(
                "show only samples with the tag", "empty input shows every sample", suggestions
            ),
            self._filter,
        )

    def _filter(self, text: str | None) -> None:
        if text is None:
            return
        tag = " ".join(text.split()).lower() or None
        if not self.session.set_filter(tag):
            self.say(f"no sample has the tag '{tag}'; filter unchanged")
            return
        self.cursor = 0
        self.say(f"filter: {tag}" if tag else "filter cleared")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
