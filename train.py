"""Train a GAN on Fashion-MNIST: ``python train.py model=conv trainer.max_epochs=15``."""

import signal
import sys
import traceback

try:  # torch and Lightning take seconds to load: a Ctrl-C meanwhile exits quietly, as one while the run starts
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from gan.errors import UserError, exit_on_user_error
    from gan.training import check_command_line, in_sweep, register_resolvers, train
except KeyboardInterrupt:
    sys.exit(128 + signal.SIGINT)

register_resolvers()
failed_runs: list[str] = []


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        if not in_sweep():
            sys.exit(1)
        failed_runs.append(HydraConfig.get().runtime.output_dir)  # the sweep goes on with the other runs
    except Exception:  # a bug, or the machine (out of memory): its traceback, and a sweep goes on
        if not in_sweep():
            raise
        traceback.print_exc()
        failed_runs.append(HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    try:
        with exit_on_user_error():
            check_command_line(sys.argv[1:])
        main()
    except KeyboardInterrupt:  # before training (which saves a checkpoint and exits with 130 itself)
        sys.exit(128 + signal.SIGINT)
    if failed_runs:
        print(f"error: {len(failed_runs)} run(s) of the sweep failed: {', '.join(failed_runs)}", file=sys.stderr)
        sys.exit(1)
