"""The segmentation task: a segmenter of crack pixels, which scans photos into crack masks and measures the cracks."""

from crack_lightning.tasks.task import Task

SEGMENTATION = Task(
    name="segmentation",
    what="crack segmenter",
    predictor="crack_lightning.scanning.models:Segmenter",
    scan="crack_lightning.scanning.tasks:CrackTask",
    command="crack_lightning.cli.scan:segmenter_summary",
    module="crack_lightning.models.segmenter:CrackSegmenter",
    datamodule="crack_lightning.data.segmentation:SegmentationDataModule",
    lightning_cli="crack_lightning.cli.segment:run",
    check_checkpoint="crack_lightning.models.checkpoints:check_segmenter",
    export="crack_lightning.export.onnx:export_segmenter",
    gpu_network="crack_lightning.export.gpu:segmenter_network",
    metadata="crack_lightning.export.onnx:segmenter_metadata",
)
