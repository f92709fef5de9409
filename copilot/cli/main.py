"""`copilot` command line: thin — parse, call the modules, print.

Every command lives in its own module of this package and is imported only when it runs, so
`copilot --help` is instant and never imports torch.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from copilot.cli.common import err
from copilot.core import paths
from copilot.core.types import CopilotError

paths.set_offline_env()


# name -> ("module:attribute", short help). Loaded only when used.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "explain": ("copilot.cli.explain:explain", "Explain FILE: an overview, then each top-level function/class, streamed."),
    "complete": ("copilot.cli.complete:complete", "Print the inline completion an editor would show at LINE:COL of FILE."),
    "models": ("copilot.cli.models:models", "Base models available locally, the default, and each conversion cache."),
    "config": ("copilot.cli.config:config_cmd", "Show the effective settings (or every setting with --defaults)."),
    "demo": ("copilot.cli.demo:demo", "Show the product working on the embedded model: a completion, an explanation."),
    "index": ("copilot.cli.index:index", "Mine git repositories into a training-pairs dataset."),
    "train": ("copilot.cli.train:train_cmd", "Train a LoRA adapter on a pairs dataset (registered as a candidate)."),
    "eval": ("copilot.cli.eval:eval_cmd", "Evaluate an adapter against the base model on the newest-commit test split."),
    "adapters": ("copilot.cli.adapters:adapters_group", "List, show, promote, roll back or remove registered adapters."),
    "retrain": ("copilot.cli.nightly:retrain_cmd", "Nightly cycle: mine new commits, train a candidate, promote it only if better."),
    "stats": ("copilot.cli.stats:stats_cmd", "Acceptance of served suggestions per adapter version, language or day."),
    "serve": ("copilot.cli.serve:serve_group", "Serve every team's adapter from one endpoint (llama.cpp server or vLLM); manage team keys."),
    "schedule": ("copilot.cli.nightly:schedule_group", "Install, show or remove the nightly retraining timer (systemd or cron)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        names.update(n for n, (target, _) in LAZY_COMMANDS.items() if _available(target))
        return sorted(names)

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        target, short = LAZY_COMMANDS[name]
        if ctx.resilient_parsing or _help_listing():
            # For the command list show the short help without importing the module.
            if not _available(target):
                return None
            return click.Command(name, help=short, short_help=short)
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            return None
        return getattr(mod, attr, None)


def _help_listing() -> bool:
    return any(a in ("--help", "-h") for a in sys.argv[1:2])


def _available(target: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(target.split(":")[0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="copilot")
def cli():
    """Self-hosted coding copilot that learns your company's code. Offline; everything stays on this machine.

    Data lives under $COPILOT_HOME (default ~/.local/share/copilot).
    """


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="copilot", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except CopilotError as exc:
        err.print(f"[red]error:[/] {exc}", markup=True)
        sys.exit(exc.exit_code)
    except MemoryError:
        err.print("[red]error:[/] out of memory")
        sys.exit(1)
    except OSError as exc:
        if exc.errno == 28:
            err.print(f"[red]error:[/] no space left on device ({exc.filename or paths.home()})")
        else:
            err.print(f"[red]error:[/] {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        sys.exit(1)
    except Exception as exc:  # last resort: one line, traceback only on request
        if os.environ.get("COPILOT_DEBUG"):
            traceback.print_exc()
        err.print(f"[red]internal error:[/] {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                  "(set COPILOT_DEBUG=1 for details)")
        sys.exit(1)


if __name__ == "__main__":
    main()
