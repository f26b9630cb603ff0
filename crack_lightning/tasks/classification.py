"""The classification task: a classifier of concrete patches (crack or sound), which scans photos into tile maps."""

from crack_lightning.tasks.task import Task

CLASSIFICATION = Task(
    name="classification",
    what="crack classifier",
    predictor="crack_lightning.scanning.models:Classifier",
    scan="crack_lightning.scanning.tasks:TileTask",
    command="crack_lightning.cli.scan:classifier_summary",
    module="crack_lightning.models.classifier:CrackClassifier",
    datamodule="crack_lightning.data.classification:CrackDataModule",
    lightning_cli="crack_lightning.cli.train:run",
    check_checkpoint="crack_lightning.models.checkpoints:check_classifier",
    export="crack_lightning.export.onnx:export_classifier",
    gpu_network="crack_lightning.export.gpu:classifier_network",
    metadata="crack_lightning.export.onnx:classifier_metadata",
)
