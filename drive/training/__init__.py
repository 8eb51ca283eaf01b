"""Training from recorded drives: config, data, augmentation, loss, schedule, the Trainer, DDP.

Import the modules directly (`drive.training.trainer`, ...); this package file stays empty so that
`import drive.training.train_config` does not pull in the Trainer's dependencies.
"""
