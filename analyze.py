"""The latent-number study of the lab: ``python analyze.py ckpt=PATH latent.values=[1,10,100]``."""

import signal
import sys

try:  # torch takes seconds to load: a Ctrl-C meanwhile exits quietly
    import hydra
    from omegaconf import DictConfig

    from gan.analysis import analyze, check_command_line
    from gan.errors import exit_on_user_error
except KeyboardInterrupt:
    sys.exit(128 + signal.SIGINT)


def stop(signum: int, frame: object) -> None:
    """SIGTERM (kill, timeout) or SIGHUP stops a study as Ctrl-C does: its unfinished files are removed."""
    raise KeyboardInterrupt(signum)


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        with exit_on_user_error():
            out_dir = analyze(cfg)
    except KeyboardInterrupt as interrupt:
        print("\ninterrupted: out_dir keeps the previous study", file=sys.stderr)
        sys.exit(128 + (interrupt.args[0] if interrupt.args else signal.SIGINT))
    print(f"wrote the study to {out_dir} (report.md, report.html, metrics.json, figures)")


if __name__ == "__main__":
    try:
        with exit_on_user_error():
            check_command_line(sys.argv[1:])
        main()
    except KeyboardInterrupt:  # while Hydra composes the settings, before the study
        sys.exit(128 + signal.SIGINT)
