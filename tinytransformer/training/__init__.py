"""Training a GPT on a text, as nanoGPT's train.py does: the tooling around the model.

    settings.py    TrainConfig, the presets, and one check for every setting
    start.py       where a new run starts: its tokenizer and initial weights (--init)
    loop.py        train() and the training loop itself, which reads top to bottom
    step.py        one step's gradient, on one worker or shared out among threads (DataParallel)
    processes.py   the same step with each worker a process (ProcessDataParallel), where Linux's fork allows
    run.py         the state of a run: model, AdamW, sampler; saving, restoring, evaluating
    checkpoint.py  one .npz file per checkpoint, written atomically, read back with every field checked
    run_folder.py  the run's folder: its files, its lock, what a killed run left behind

    from tinytransformer.training import TrainConfig, train
    summary = train(TrainConfig(max_iters=200))
"""
from .checkpoint import (Checkpoint, CheckpointError, check_config, gpt_config_of, load_checkpoint, restore,
                         save_checkpoint)
from .loop import Interrupted, TrainingDiverged, WriteFailed, train, training_loop
from .run_folder import CHECKPOINT_NAME, LATEST_NAME, METRICS_NAME, PLOT_NAME, FolderInUse, RunLock
from .processes import ProcessDataParallel, WorkerFailed, data_parallel
from .step import DataParallel, accumulate_gradients
from .settings import (BPE_VOCAB_SIZE, DEVICES, PRESETS, TOKENIZERS, SettingsError, TrainConfig, check_settings,
                       model_config, new_run_config, resume_config)

__all__ = ["TrainConfig", "PRESETS", "DEVICES", "TOKENIZERS", "BPE_VOCAB_SIZE", "SettingsError",
           "check_settings", "model_config", "new_run_config", "resume_config", "train", "training_loop",
           "accumulate_gradients", "DataParallel", "ProcessDataParallel", "WorkerFailed", "data_parallel",
           "TrainingDiverged", "WriteFailed", "Interrupted", "Checkpoint", "CheckpointError",
           "save_checkpoint", "load_checkpoint", "gpt_config_of", "restore", "check_config", "RunLock",
           "FolderInUse", "CHECKPOINT_NAME", "LATEST_NAME", "METRICS_NAME", "PLOT_NAME"]
