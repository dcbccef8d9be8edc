"""All access to Weights & Biases lives here, shared by the runner's tracker and `benchmark`.

``wandb`` is imported only inside the functions that need it (never at import time of this
package), so the runner's parent process stays light when tracking is off. Every W&B directory is
placed by ``env.wandb_env`` (under the run store or a directory the caller names), never the
user's home by surprise.
"""
