"""Deployment to the companion computer (`navigator deploy`): a policy bundle becomes a new version on the target
over SSH, beside the old ones, with its own virtual environment and settings; it is self-tested there and only then
made active, by an atomic switch of a symlink; the previous version stays for `--rollback`.

`target`: the checked target and options. `ssh`: OpenSSH argv lists and the Step type. `runner`: runs steps, dry
runs, undo. `probe`: the read-only look at the target (runs there). `layout`: the target's folders and the probe's
report. `wheel`: the project's wheel and the venv key. `service`: the systemd unit. `lock`, `lock_remote`: one
state-changing run at a time per target. `pipeline`: deploy, rollback, prune, status.
"""
