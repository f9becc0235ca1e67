"""me-vqa: micro-expression visual question answering with Qwen2.5-VL."""

__version__ = "0.1.0"
