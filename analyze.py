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


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    try:
        with exit_on_user_error():
            out_dir = analyze(cfg)
    except KeyboardInterrupt:
        print("\ninterrupted: out_dir keeps the previous study", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    print(f"wrote the study to {out_dir} (report.md, report.html, metrics.json, figures)")


if __name__ == "__main__":
    try:
        with exit_on_user_error():
            check_command_line(sys.argv[1:])
        main()
    except KeyboardInterrupt:  # while Hydra composes the settings, before the study
        sys.exit(128 + signal.SIGINT)
