"""The whole POST pipeline (distil -> private tune -> transfer -> evaluate) as one resumable run."""

from .config import PipelineConfig, load_pipeline_config

__all__ = ["PipelineConfig", "load_pipeline_config"]
