"""The lab's networks: ``mlp`` (the teacher's original GAN) and ``conv`` (the extra-credit one)."""
