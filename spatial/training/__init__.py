"""Training, whatever the method: the run loop and what it writes.

    loop.py        run_training: load the scene, build the method's trainer, step it with a progress bar, evaluate,
                   checkpoint, export the final model, serve the live viewer; Ctrl-C keeps a checkpoint
    trainer.py     RunConfig (the settings every method shares) and TrainerBase (what a method's trainer subclasses)
    methods.py     the registry of methods (splat, nerf) and their presets
    run_folder.py  what a run folder holds: config.json, checkpoints/, eval.json, the final model
    checkpoint.py  checkpoint files, written atomically and read without unpickling code
    distributed.py several processes under torchrun (one per GPU) training one model

Nothing is imported here: `spatial.training.methods` stays light for the command line.
"""
